// rt/semaphore.hpp — a weighted semaphore (golang.org/x/sync/semaphore).
// (Filled in by issue 12; see docs/api.md.)
#pragma once
