// rt/rwmutex.hpp — a reader/writer lock that parks fibers (Go's sync.RWMutex).
// (Filled in by issue 12; see docs/api.md.)
#pragma once
