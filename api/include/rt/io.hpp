// rt/io.hpp — waiting for a file descriptor without blocking the worker (Go's netpoller).
//
//   ::fcntl(fd, F_SETFL, O_NONBLOCK);            // the descriptor must be non-blocking
//   for (;;) {
//     ssize_t n = ::read(fd, buf, sizeof buf);
//     if (n >= 0 || errno != EAGAIN) break;
//     rt::wait_readable(fd);                      // parks this fiber; its worker runs others
//   }
//
// For any descriptor epoll supports (sockets, pipes, eventfd, a database client's socket), so
// existing non-blocking libraries can run on fibers. A regular file is always ready (as poll(2)
// says); use rt::blocking for file I/O. On a plain thread (no fiber) the wait is an ordinary
// poll(2). The descriptor must stay open while a fiber waits on it.
#pragma once

#include <chrono>

#include "rt/detail/deadline.hpp"

namespace rt {

// Parks the calling fiber until fd is readable (data, end of file, a hang-up or an error is
// pending), or until `deadline`: true when readable, false when the deadline passed first.
// Throws std::system_error when fd cannot be waited on (EBADF: not open).
bool wait_readable(int fd, std::chrono::steady_clock::time_point deadline =
                               std::chrono::steady_clock::time_point::max());
// As wait_readable, for writing (buffer space, a hang-up or an error is pending).
bool wait_writable(int fd, std::chrono::steady_clock::time_point deadline =
                               std::chrono::steady_clock::time_point::max());

// As above, giving up after `timeout` (saturating: a timeout too long for the clock is forever).
template <class Rep, class Period>
bool wait_readable(int fd, std::chrono::duration<Rep, Period> timeout) {
  return wait_readable(fd, detail::deadline_after(detail::saturating_ns(timeout)));
}
template <class Rep, class Period>
bool wait_writable(int fd, std::chrono::duration<Rep, Period> timeout) {
  return wait_writable(fd, detail::deadline_after(detail::saturating_ns(timeout)));
}

}  // namespace rt
