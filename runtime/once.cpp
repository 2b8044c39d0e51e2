// runtime/once.cpp — see api/include/rt/once.hpp.
#include "rt/once.hpp"
