// rt/once.hpp — running an initialisation exactly once (Go's sync.Once).
// (Filled in by issue 12; see docs/api.md.)
#pragma once
