// rt/context.hpp — cancellation, deadlines and request-scoped values (Go's context package).
// (Filled in by issue 12; see docs/api.md.)
#pragma once
