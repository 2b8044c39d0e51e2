// runtime/context.cpp — see api/include/rt/context.hpp.
#include "rt/context.hpp"
