// runtime/ticker.cpp — see api/include/rt/ticker.hpp.
#include "rt/ticker.hpp"
