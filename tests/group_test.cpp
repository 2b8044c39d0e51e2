// tests/group_test.cpp — placeholder (issue 12).
#include <gtest/gtest.h>

TEST(Placeholder, group) {}
