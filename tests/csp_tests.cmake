# tests/csp_tests.cmake — the GoogleTest suites for channels, select, sync objects, time,
# deadlock detection and the tutorial examples. Included from tests/CMakeLists.txt, after
# find_package(GTest REQUIRED) and include(GoogleTest).
#
# Every suite is built with -g: the deadlock reports name the file:line that spawned each parked
# fiber and its stack (resolved with libdw), and deadlock_test checks that they do.
# Labels: "heavy" marks tests that need seconds and gigabytes (ctest -LE heavy skips them, as the
# sanitizer runs do).

set(RT_CSP_TESTS_DIR ${CMAKE_CURRENT_LIST_DIR})

# rt_csp_test(<name> [TIMEOUT <s>] [FILTER <gtest filter>] [LABELS <l>...])
#   Builds tests/<name>.cpp into <name> and registers its tests with ctest (one ctest test per
#   gtest test). FILTER restricts the registered tests, so one executable can be registered twice
#   with different properties (see time_test below).
function(rt_csp_test name)
  cmake_parse_arguments(T "" "TIMEOUT;FILTER" "LABELS" ${ARGN})
  if(NOT TARGET ${name})
    add_executable(${name} ${RT_CSP_TESTS_DIR}/${name}.cpp)
    target_link_libraries(${name} PRIVATE rt::csp GTest::gtest_main)
    target_compile_options(${name} PRIVATE -g -Wall -Wextra)
  endif()
  if(NOT T_TIMEOUT)
    set(T_TIMEOUT 120)
  endif()
  if(RT_SANITIZE)
    math(EXPR T_TIMEOUT "${T_TIMEOUT} * 5")  # sanitizer builds run 5-20x slower
  endif()
  set(props TIMEOUT ${T_TIMEOUT})
  if(RT_TEST_ENV_MOD)
    list(APPEND props ENVIRONMENT_MODIFICATION "${RT_TEST_ENV_MOD}")
  endif()
  if(T_LABELS)
    list(APPEND props LABELS "${T_LABELS}")
  endif()
  set(filter_args)
  if(T_FILTER)
    set(filter_args TEST_FILTER ${T_FILTER})
  endif()
  gtest_discover_tests(${name} ${filter_args} DISCOVERY_TIMEOUT 120 PROPERTIES ${props})
endfunction()

rt_csp_test(chan_test LABELS concurrency)
# send_chan / recv_chan (Go's channel directions) and rt::after's receive-only channel.
rt_csp_test(chan_direction_test LABELS concurrency)
rt_csp_test(select_test TIMEOUT 300 LABELS concurrency)
# PipelineHeavy (a million stage fibers) is heavy; the rest of chan_stress_test is not.
rt_csp_test(chan_stress_test FILTER "-*Heavy*" TIMEOUT 300 LABELS concurrency)
rt_csp_test(chan_stress_test FILTER "*Heavy*" TIMEOUT 900 LABELS heavy)
rt_csp_test(sync_test LABELS concurrency)
# The million-sleeper test is the heavy one; the rest of time_test is quick.
rt_csp_test(time_test FILTER "-*Heavy*" LABELS unit)
rt_csp_test(time_test FILTER "*Heavy*" TIMEOUT 600 LABELS heavy)
rt_csp_test(deadlock_test LABELS unit)
# Fiber dumps (rt::dump_fibers, SIGQUIT) and their claim protocol under load (issue 10).
rt_csp_test(dump_test LABELS concurrency)
# rt::blocking's pool: bound, FIFO queue, shutdown, deadlock check (issue 11).
rt_csp_test(blocking_test FILTER "-*Heavy*" LABELS concurrency)
rt_csp_test(blocking_test FILTER "*Heavy*" LABELS heavy)  # waits out the 10 s keep-alive
# Timer stealing and deadline saturation (issue 9); hangs (ctest timeout) if a timer is missed.
rt_csp_test(timer_test LABELS concurrency)
rt_csp_test(io_test LABELS concurrency)
# rt::net (issue 11): TCP on fibers; TenThousandIdleConnections is heavy.
rt_csp_test(net_test FILTER "-*Heavy*" TIMEOUT 300 LABELS concurrency)
rt_csp_test(net_test FILTER "*Heavy*" TIMEOUT 600 LABELS heavy)
# Go's everyday toolbox (issue 12).
rt_csp_test(select_order_test LABELS concurrency)
rt_csp_test(ticker_test LABELS concurrency)
rt_csp_test(once_test LABELS concurrency)
rt_csp_test(semaphore_test LABELS concurrency)
rt_csp_test(rwmutex_test LABELS concurrency)
rt_csp_test(context_test LABELS concurrency)
rt_csp_test(group_test LABELS concurrency)

# tutorial_test runs the example programs of examples/tutorial/ and checks what they print.
if(TARGET tutorial_01_serial)
  rt_csp_test(tutorial_test LABELS unit)
  target_compile_definitions(tutorial_test PRIVATE
                             RT_TUTORIAL_DIR="${CMAKE_BINARY_DIR}/examples/tutorial")
  add_dependencies(tutorial_test
    tutorial_01_serial tutorial_02_go_without_waiting tutorial_03_sleep_in_main
    tutorial_04_wait_group tutorial_05_channel_print tutorial_06_range_without_close
    tutorial_07_every_worker_closes tutorial_08_fixed tutorial_09_select)
endif()

# Valgrind memcheck of one example that uses channels, select, a wait_group and timers, on two
# workers: any Memcheck error or definite leak fails it (label "valgrind"). Valgrind follows fiber
# switches only because the stack pool registers its stacks (runtime/valgrind.hpp), which needs
# <valgrind/valgrind.h> at build time; without valgrind or its header the test is not registered.
# Not in sanitizer builds (Valgrind cannot run them).
if(TARGET tutorial_09_select AND NOT RT_SANITIZE)
  find_program(RT_VALGRIND valgrind)
  include(CheckIncludeFileCXX)
  check_include_file_cxx(valgrind/valgrind.h RT_HAVE_VALGRIND_H)
  if(RT_VALGRIND AND RT_HAVE_VALGRIND_H)
    add_test(NAME Valgrind.Memcheck09Select
             COMMAND ${RT_VALGRIND} -q --error-exitcode=1 --leak-check=full
                     --errors-for-leak-kinds=definite
                     $<TARGET_FILE:tutorial_09_select>)
    set_tests_properties(Valgrind.Memcheck09Select PROPERTIES
      LABELS valgrind TIMEOUT 300 ENVIRONMENT RT_MAXPROCS=2)
    # Shutdown with leftover fibers parked on channels whose only handles were in main's frame
    # (issue 9, item 1): before, unwinding them read the freed channels (Invalid read).
    add_test(NAME Valgrind.ShutdownLeftoversOnMainsChannels
             COMMAND ${RT_VALGRIND} -q --error-exitcode=1 --leak-check=full
                     --errors-for-leak-kinds=definite $<TARGET_FILE:shutdown_test>
                     --gtest_filter=Shutdown.Item1LeftoverOnMainsChannelTouchesNothingFreed)
    set_tests_properties(Valgrind.ShutdownLeftoversOnMainsChannels PROPERTIES
      LABELS valgrind TIMEOUT 300)
  else()
    message(STATUS "valgrind or <valgrind/valgrind.h> not found (Debian package valgrind): "
                   "the valgrind test (label valgrind) is not registered")
  endif()
endif()

# The gdb extension (tools/gdb/librt-csp-gdb.py): `info fibers` and `fiber bt N` on a live
# process (tests/gdb_test.sh; skipped when gdb is missing). Not in sanitizer builds.
if(NOT RT_SANITIZE)
  add_executable(gdb_target ${RT_CSP_TESTS_DIR}/gdb_target.cpp)
  target_link_libraries(gdb_target PRIVATE rt::csp)
  target_compile_options(gdb_target PRIVATE -g -Wall -Wextra)
  add_test(NAME Gdb.InfoFibersAndFiberBt
           COMMAND bash ${RT_CSP_TESTS_DIR}/gdb_test.sh $<TARGET_FILE:gdb_target>)
  set_tests_properties(Gdb.InfoFibersAndFiberBt PROPERTIES TIMEOUT 120 LABELS unit
                       SKIP_RETURN_CODE 77)
endif()
