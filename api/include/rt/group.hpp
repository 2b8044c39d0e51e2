// rt/group.hpp — running a group of fibers that fail together (golang.org/x/sync/errgroup).
// (Filled in by issue 12; see docs/api.md.)
#pragma once
