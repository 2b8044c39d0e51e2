// rt/ticker.hpp — a repeating timer (Go's time.Ticker and time.Tick).
// (Filled in by issue 12; see docs/api.md.)
#pragma once
