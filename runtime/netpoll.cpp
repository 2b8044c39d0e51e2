// runtime/netpoll.cpp — SKELETON (the lead replaces it): waits with poll(2), blocking the worker.
#include "netpoll.hpp"

#include <poll.h>

#include <cerrno>
#include <system_error>

#include "rt/io.hpp"
#include "timer.hpp"

namespace rt::detail {

struct poll_desc {
  int fd;
  bool closed = false;
};

poll_desc* poll_open(int fd) {
  return new poll_desc{fd};
}

bool wait_fd(int fd, poll_mode mode, std::int64_t deadline) {
  for (;;) {
    pollfd p{fd, static_cast<short>(mode == poll_mode::read ? POLLIN : POLLOUT), 0};
    std::int64_t now = now_ns();
    if (deadline != no_deadline && now >= deadline) return false;
    int ms = deadline == no_deadline
                 ? 50
                 : static_cast<int>(std::min<std::int64_t>((deadline - now) / 1000000 + 1, 50));
    int r = ::poll(&p, 1, ms);
    if (r > 0) {
      if (p.revents & POLLNVAL)
        throw std::system_error(EBADF, std::generic_category(), "rt::wait_readable");
      return true;
    }
  }
}

poll_status poll_wait(poll_desc* pd, poll_mode mode, std::int64_t deadline) {
  if (pd->closed) return poll_status::closed;
  return wait_fd(pd->fd, mode, deadline) ? poll_status::ready : poll_status::timed_out;
}

void poll_close(poll_desc* pd) noexcept {
  pd->closed = true;
}

}  // namespace rt::detail

namespace rt {
bool wait_readable(int fd, std::chrono::steady_clock::time_point d) {
  return detail::wait_fd(fd, detail::poll_mode::read, detail::deadline_ns(d));
}
bool wait_writable(int fd, std::chrono::steady_clock::time_point d) {
  return detail::wait_fd(fd, detail::poll_mode::write, detail::deadline_ns(d));
}
}  // namespace rt
