// rt/timer.hpp — a one-shot timer that can be stopped and reset (Go's time.Timer, time.AfterFunc).
// (Filled in by issue 12; see docs/api.md.)
#pragma once
