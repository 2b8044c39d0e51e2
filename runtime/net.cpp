// runtime/net.cpp — rt::net (rt/net.hpp): TCP on the netpoller.
//
// Every call follows one pattern: try the non-blocking system call; on EAGAIN park in
// poll_wait (netpoll.hpp) with the deadline read from the descriptor's state; on `ready` retry,
// on `timed_out` fail with std::errc::timed_out, on `closed` fail with net_errc::closed.
//
// Lifetime of a descriptor (fd_state::ref): close() may run in one fiber while others are inside
// read/accept on the same conn, and the descriptor number must not be closed under them (the
// kernel would hand the number to the next socket(), and a stale read would then read someone
// else's connection). So every call holds a reference while it uses the descriptor; close() sets
// the closing bit (no new call gets in), wakes parked callers through poll_close, and drops the
// owner's reference; whoever drops the count to zero closes the descriptor. The state object
// itself lives until both the count is zero and the conn/listener object is gone (the `gone`
// bit), so destroying a conn while another fiber is still inside read() on it is safe as well.
#include "rt/net.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <net/if.h>
#include <netdb.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <cstring>
#include <new>
#include <stdexcept>

#include "netpoll.hpp"
#include "rt/blocking.hpp"
#include "rt/detail/deadline.hpp"
#include "rt/mutex.hpp"
#include "timer.hpp"

namespace rt::net {

// ---- error categories -------------------------------------------------------------------------

namespace {

class net_category_impl final : public std::error_category {
 public:
  const char* name() const noexcept override { return "rt::net"; }
  std::string message(int c) const override {
    switch (static_cast<net_errc>(c)) {
      case net_errc::closed:
        return "use of closed network connection";
      case net_errc::unexpected_eof:
        return "unexpected EOF";
    }
    return "unknown rt::net error " + std::to_string(c);
  }
};

class resolve_category_impl final : public std::error_category {
 public:
  const char* name() const noexcept override { return "getaddrinfo"; }
  std::string message(int c) const override { return ::gai_strerror(c); }
};

}  // namespace

const std::error_category& net_category() noexcept {
  static const net_category_impl c;
  return c;
}
std::error_code make_error_code(net_errc e) noexcept {
  return {static_cast<int>(e), net_category()};
}
const std::error_category& resolve_category() noexcept {
  static const resolve_category_impl c;
  return c;
}

namespace {

// Errors from the kernel carry std::system_category (the standard library's convention for OS
// errors); a deadline's timeout carries std::generic_category's ETIMEDOUT, so both compare equal
// to std::errc::timed_out, yet what() can say "i/o timeout" for a deadline only and "Connection
// timed out" for the kernel's own (a TCP retransmission timeout).
std::error_code sys_error(int e) noexcept {
  return {e, std::system_category()};
}
std::error_code deadline_error() noexcept {
  return std::make_error_code(std::errc::timed_out);
}

// std::system_error whose what() is exactly "<call> <address>: <message>" (libstdc++'s would
// append the category's message, "Connection timed out", to whatever we pass).
class net_error : public std::system_error {
 public:
  net_error(std::error_code ec, const std::string& what) : std::system_error(ec), what_(what) {}
  const char* what() const noexcept override { return what_.what(); }

 private:
  std::runtime_error what_;  // copies without allocating (a shared string), like what() needs
};

std::string message_of(std::error_code ec) {
  if (ec == deadline_error()) return "i/o timeout";
  return ec.message();
}

[[noreturn]] void throw_error(const char* call, const address& a, std::error_code ec,
                              const char* advice = nullptr) {
  std::string w = call;
  if (!a.empty()) {
    w += ' ';
    w += a.to_string();
  }
  w += ": ";
  w += message_of(ec);
  if (advice) w += advice;
  throw net_error(ec, w);
}

}  // namespace

// ---- address --------------------------------------------------------------------------------

namespace {

struct host_port_parts {
  std::string_view host, port;
  bool bracketed = false;  // "[host]:port": host must be an IPv6 literal
};

// "host:port", "[v6]:port" -> parts; nullopt if malformed (no port, a v6 literal without
// brackets, stray brackets).
std::optional<host_port_parts> split_host_port(std::string_view s) noexcept {
  if (!s.empty() && s.front() == '[') {
    auto close = s.find(']');
    if (close == std::string_view::npos || close + 1 >= s.size() || s[close + 1] != ':') {
      return std::nullopt;
    }
    return host_port_parts{s.substr(1, close - 1), s.substr(close + 2), true};
  }
  auto colon = s.rfind(':');
  if (colon == std::string_view::npos) return std::nullopt;
  std::string_view host = s.substr(0, colon);
  if (host.find(':') != std::string_view::npos || host.find_first_of("[]") != host.npos) {
    return std::nullopt;  // "::1:80": too many colons (Go: bracket IPv6 literals)
  }
  return host_port_parts{host, s.substr(colon + 1), false};
}

std::optional<std::uint16_t> parse_port(std::string_view p) noexcept {
  if (p.empty() || p.size() > 5) return std::nullopt;
  unsigned v = 0;
  auto [end, err] = std::from_chars(p.data(), p.data() + p.size(), v);
  if (err != std::errc() || end != p.data() + p.size() || v > 65535) return std::nullopt;
  return static_cast<std::uint16_t>(v);
}

// A numeric host ("127.0.0.1", "::1", "fe80::1%eth0") and port -> sockaddr.
bool make_native(std::string_view host, std::uint16_t port, sockaddr_in& v4, sockaddr_in6& v6,
                 bool& is6) noexcept {
  char buf[INET6_ADDRSTRLEN + IF_NAMESIZE + 2];
  if (host.empty() || host.size() >= sizeof buf) return false;
  std::memcpy(buf, host.data(), host.size());
  buf[host.size()] = '\0';
  if (::inet_pton(AF_INET, buf, &v4.sin_addr) == 1) {
    v4.sin_family = AF_INET;
    v4.sin_port = htons(port);
    is6 = false;
    return true;
  }
  std::uint32_t scope = 0;
  if (char* pct = std::strchr(buf, '%')) {
    *pct = '\0';
    std::string_view zone(pct + 1);
    if (zone.empty()) return false;
    auto [end, err] = std::from_chars(zone.data(), zone.data() + zone.size(), scope);
    if (err != std::errc() || end != zone.data() + zone.size()) {
      scope = ::if_nametoindex(pct + 1);
      if (scope == 0) return false;
    }
  }
  if (::inet_pton(AF_INET6, buf, &v6.sin6_addr) == 1) {
    v6.sin6_family = AF_INET6;
    v6.sin6_port = htons(port);
    v6.sin6_scope_id = scope;
    is6 = true;
    return true;
  }
  return false;
}

}  // namespace

std::optional<address> address::try_parse(std::string_view host_port) noexcept {
  auto parts = split_host_port(host_port);
  if (!parts) return std::nullopt;
  auto port = parse_port(parts->port);
  if (!port) return std::nullopt;
  address a;
  bool is6 = false;
  if (!make_native(parts->host, *port, a.native_.v4, a.native_.v6, is6)) return std::nullopt;
  if (is6 != parts->bracketed) return std::nullopt;  // "[1.2.3.4]:80"
  return a;
}

address address::parse(std::string_view host_port) {
  if (auto a = try_parse(host_port)) return *a;
  throw std::invalid_argument("rt::net::address::parse: \"" + std::string(host_port) +
                              "\" is not a numeric address with a port (\"127.0.0.1:80\", "
                              "\"[::1]:80\")");
}

address address::from_native(const sockaddr* sa, socklen_t len) {
  address a;
  if (sa != nullptr && sa->sa_family == AF_INET && len >= sizeof(sockaddr_in)) {
    std::memcpy(&a.native_.v4, sa, sizeof(sockaddr_in));
  } else if (sa != nullptr && sa->sa_family == AF_INET6 && len >= sizeof(sockaddr_in6)) {
    std::memcpy(&a.native_.v6, sa, sizeof(sockaddr_in6));
  } else {
    throw std::invalid_argument(
        "rt::net::address::from_native: not an IPv4 or IPv6 socket address (family " +
        std::to_string(sa ? sa->sa_family : -1) + ", length " + std::to_string(len) + ")");
  }
  return a;
}

std::string address::host() const {
  char buf[INET6_ADDRSTRLEN];
  if (native_.sa.sa_family == AF_INET) {
    ::inet_ntop(AF_INET, &native_.v4.sin_addr, buf, sizeof buf);
    return buf;
  }
  if (native_.sa.sa_family == AF_INET6) {
    ::inet_ntop(AF_INET6, &native_.v6.sin6_addr, buf, sizeof buf);
    std::string h = buf;
    if (native_.v6.sin6_scope_id != 0) h += '%' + std::to_string(native_.v6.sin6_scope_id);
    return h;
  }
  return {};
}

std::string address::to_string() const {
  if (empty()) return {};
  std::string h = host();
  std::string p = std::to_string(port());
  return is_v6() ? "[" + h + "]:" + p : h + ":" + p;
}

std::uint16_t address::port() const noexcept {
  if (native_.sa.sa_family == AF_INET) return ntohs(native_.v4.sin_port);
  if (native_.sa.sa_family == AF_INET6) return ntohs(native_.v6.sin6_port);
  return 0;
}

bool address::is_v6() const noexcept {
  return native_.sa.sa_family == AF_INET6;
}

socklen_t address::native_size() const noexcept {
  if (native_.sa.sa_family == AF_INET) return sizeof(sockaddr_in);
  if (native_.sa.sa_family == AF_INET6) return sizeof(sockaddr_in6);
  return 0;
}

bool operator==(const address& a, const address& b) noexcept {
  if (a.native_.sa.sa_family != b.native_.sa.sa_family) return false;
  if (a.native_.sa.sa_family == AF_INET) {
    return a.native_.v4.sin_port == b.native_.v4.sin_port &&
           a.native_.v4.sin_addr.s_addr == b.native_.v4.sin_addr.s_addr;
  }
  if (a.native_.sa.sa_family == AF_INET6) {
    return a.native_.v6.sin6_port == b.native_.v6.sin6_port &&
           a.native_.v6.sin6_scope_id == b.native_.v6.sin6_scope_id &&
           std::memcmp(&a.native_.v6.sin6_addr, &b.native_.v6.sin6_addr, 16) == 0;
  }
  return true;  // both empty
}

// ---- resolve --------------------------------------------------------------------------------

std::vector<address> resolve(std::string_view host, std::string_view port) {
  // Numeric host and port: no lookup, no pool.
  if (auto p = parse_port(port)) {
    address a;
    sockaddr_in v4{};
    sockaddr_in6 v6{};
    bool is6 = false;
    if (make_native(host, *p, v4, v6, is6)) {
      return {is6 ? address::from_native(reinterpret_cast<sockaddr*>(&v6), sizeof v6)
                  : address::from_native(reinterpret_cast<sockaddr*>(&v4), sizeof v4)};
    }
  }
  const std::string h(host), p(port);
  struct result {
    int rc = 0;
    int err = 0;  // errno for EAI_SYSTEM
    std::vector<address> addrs;
  };
  result r = rt::blocking([&] {
    result out;
    addrinfo hints{};
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    addrinfo* list = nullptr;
    out.rc = ::getaddrinfo(h.empty() ? nullptr : h.c_str(), p.c_str(), &hints, &list);
    out.err = errno;
    if (out.rc != 0) return out;
    for (addrinfo* ai = list; ai != nullptr; ai = ai->ai_next) {
      if (ai->ai_family != AF_INET && ai->ai_family != AF_INET6) continue;
      address a = address::from_native(ai->ai_addr, ai->ai_addrlen);
      bool seen = false;
      for (const address& b : out.addrs) seen = seen || b == a;
      if (!seen) out.addrs.push_back(a);
    }
    ::freeaddrinfo(list);
    return out;
  });
  const std::string what = "rt::net::resolve " + h + " " + p;
  if (r.rc == EAI_SYSTEM) throw std::system_error(sys_error(r.err), what);
  if (r.rc != 0) throw std::system_error(r.rc, resolve_category(), what);
  if (r.addrs.empty()) {
    throw std::system_error(EAI_NONAME, resolve_category(), what + " (no IPv4/IPv6 address)");
  }
  return std::move(r.addrs);
}

// ---- descriptor state -----------------------------------------------------------------------

namespace detail {

// ref: bit 31 `closing` (close() has run: no call enters after it), bit 30 `gone` (the conn or
// listener object is destroyed), bits 0-29 the count: the owner's reference (dropped by close())
// plus one per call inside rt::net on this descriptor, parked ones included. The descriptor is
// ::close()d when the count reaches zero — once: after `closing` nothing increments it — and the
// state is freed when, in addition, `gone` is set (exactly one RMW produces that state).
// Why a parked call holds the descriptor too: the netpoller's poll_desc belongs to the
// descriptor *number* (netpoll.cpp), and poll_open of a reused number re-arms it. A call that
// has dropped its reference before parking could then park on — and consume the readiness of —
// another socket's poll_desc. Holding it, the number cannot be reused until every call has left,
// and a wait that starts after close() finds the poll_desc closed (poll_close wakes the ones
// already parked), so each call returns promptly after close().
struct fd_state {
  static constexpr std::uint32_t closing = 1u << 31;
  static constexpr std::uint32_t gone = 1u << 30;
  static constexpr std::uint32_t count_mask = gone - 1;

  int fd;
  rt::detail::poll_desc* pd = nullptr;
  std::atomic<std::uint32_t> ref{1};
  // Deadlines in steady-clock ns (no_deadline: none); a listener's accept uses read_deadline.
  // Relaxed: a deadline is a single value read at each call and wait; nothing else is published
  // with it (set_deadline from another fiber is a request for later waits, ordered by whatever
  // synchronisation made the two fibers agree on it, if any).
  std::atomic<std::int64_t> read_deadline{rt::detail::no_deadline};
  std::atomic<std::int64_t> write_deadline{rt::detail::no_deadline};
  address peer;  // a conn's remote address, a listener's local one (immutable: for messages)
  // Calls in one direction take turns, as Go's fdMutex makes them: the netpoller hands a
  // readiness edge to one waiter, which may stop before EAGAIN (a read that filled its buffer,
  // one accepted connection) — a second caller parked meanwhile would sleep with data (or
  // connections) waiting and no edge left to wake it. Taking turns, the next caller tries the
  // system call itself first.
  rt::mutex read_mu;   // read, accept
  rt::mutex write_mu;  // write_all

  explicit fd_state(int f) noexcept : fd(f) {}
};

// Takes a reference for a call; false once close() has run.
// Relaxed suffices: the increment only has to be atomic with the closing bit — the RMWs on ref
// are totally ordered, so either this CAS precedes close()'s fetch_or (then the count stays
// above zero, and the descriptor open, until our release) or it sees the bit and fails. The
// fields read afterwards (fd, pd) were written before the state was handed to this thread by
// whatever passed the conn to it (spawn, a channel): that gives the happens-before.
bool acquire(fd_state* s) noexcept {
  std::uint32_t v = s->ref.load(std::memory_order_relaxed);
  do {
    if (v & fd_state::closing) return false;
  } while (!s->ref.compare_exchange_weak(v, v + 1, std::memory_order_relaxed,
                                         std::memory_order_relaxed));
  return true;
}

// Drops a reference; the last one closes the descriptor, and frees the state if it is gone.
// acq_rel: every call's system calls and accesses to s happen before its decrement (release),
// and all RMWs on ref form one release sequence, so whoever makes the last decrement (acquire)
// closes the descriptor after every call has left its system calls, and frees the state after
// every access to it.
void release(fd_state* s) noexcept {
  const int fd = s->fd;  // read before the decrement: after it, s may be freed by destroy()
  const std::uint32_t now = s->ref.fetch_sub(1, std::memory_order_acq_rel) - 1;
  // The count reaches zero only after `closing`: the owner's reference is dropped by close().
  if ((now & fd_state::count_mask) != 0) return;
  ::close(fd);
  if (now & fd_state::gone) delete s;
}

// close(): idempotent. acq_rel for the same release-sequence reason as release().
void close_state(fd_state* s) noexcept {
  const std::uint32_t prev = s->ref.fetch_or(fd_state::closing, std::memory_order_acq_rel);
  if (prev & fd_state::closing) return;
  // We still hold the owner's reference: s and fd are alive. poll_close wakes every parked call
  // with `closed` and makes later waits return it at once.
  if (s->pd != nullptr) rt::detail::poll_close(s->pd);
  // Calls still inside keep the descriptor number until they leave; the connection itself ends
  // now (the peer reads end of stream; a listener stops listening), also when such a call never
  // leaves (a fiber abandoned at shutdown while parked in it).
  if ((prev & fd_state::count_mask) > 1) (void)::shutdown(s->fd, SHUT_RDWR);
  release(s);
}

// The conn/listener object goes away: close, then free the state once no call is inside.
// acq_rel: pairs with the callers' releases, as in release().
void destroy(fd_state* s) noexcept {
  if (s == nullptr) return;
  close_state(s);
  const std::uint32_t prev = s->ref.fetch_or(fd_state::gone, std::memory_order_acq_rel);
  if ((prev & fd_state::count_mask) == 0) delete s;
}

// A call's reference, held for the call's duration.
class call_ref {
 public:
  explicit call_ref(fd_state* s) noexcept : s_(s != nullptr && acquire(s) ? s : nullptr) {}
  ~call_ref() {
    if (s_) release(s_);
  }
  call_ref(const call_ref&) = delete;
  call_ref& operator=(const call_ref&) = delete;
  explicit operator bool() const noexcept { return s_ != nullptr; }

  // Parks until the descriptor may be ready in `mode`: true to retry the system call; false
  // with ec set on timeout, close or error.
  bool wait(rt::detail::poll_mode mode, std::int64_t deadline, std::error_code& ec) noexcept {
    rt::detail::poll_status st;
    try {
      st = rt::detail::poll_wait(s_->pd, mode, deadline);
    } catch (const std::system_error& e) {
      ec = e.code();
      return false;
    } catch (...) {
      ec = sys_error(ENOMEM);
      return false;
    }
    switch (st) {
      case rt::detail::poll_status::ready:
        return true;
      case rt::detail::poll_status::timed_out:
        ec = deadline_error();
        return false;
      case rt::detail::poll_status::closed:
        break;
    }
    ec = make_error_code(net_errc::closed);
    return false;
  }

 private:
  fd_state* s_;
};

// Registers fd with the netpoller in a fresh state; on failure closes fd and returns nullptr.
fd_state* open_state(int fd, std::error_code& ec) noexcept {
  auto* s = new (std::nothrow) fd_state(fd);
  if (s == nullptr) {
    ::close(fd);
    ec = sys_error(ENOMEM);
    return nullptr;
  }
  try {
    s->pd = rt::detail::poll_open(fd);
  } catch (const std::system_error& e) {
    ec = e.code();
  } catch (...) {
    ec = sys_error(ENOMEM);
  }
  if (s->pd == nullptr) {
    ::close(fd);
    delete s;
    return nullptr;
  }
  return s;
}

// Whether close() has run. After a system call failed or read end of stream, close() may be
// why (it shuts the socket down when calls are inside): the call then reports net_errc::closed,
// as if it had started after close(). The closer sets `closing` before its shutdown(); our
// system call saw the shutdown's effect through the socket's kernel lock (released by the
// closer's system call, taken by ours), so this load, after it, sees `closing`; acquire
// documents that pairing.
bool is_closing(const fd_state* s) noexcept {
  return (s->ref.load(std::memory_order_acquire) & fd_state::closing) != 0;
}

bool expired(std::int64_t deadline) noexcept {
  return deadline != rt::detail::no_deadline && rt::detail::now_ns() >= deadline;
}

void set_no_delay(int fd, bool on) noexcept {
  int v = on ? 1 : 0;
  (void)::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &v, sizeof v);
}

struct access {
  static conn make_conn(fd_state* s) noexcept { return conn(s); }
  static listener make_listener(fd_state* s) noexcept { return listener(s); }
  static fd_state* state(const conn& c) noexcept { return c.s_; }
  static fd_state* release(conn& c) noexcept {
    fd_state* s = c.s_;
    c.s_ = nullptr;
    return s;
  }
};

}  // namespace detail

using detail::call_ref;
using detail::fd_state;

namespace {

const address& peer_of(const fd_state* s) {
  static const address none;
  return s != nullptr ? s->peer : none;
}

std::int64_t load_deadline(const std::atomic<std::int64_t>& d) noexcept {
  return d.load(std::memory_order_relaxed);  // see fd_state::read_deadline
}

// The start of a read, write or accept, after its call_ref: the call's direction takes its turn
// (fd_state::read_mu / write_mu, held until the call returns), then its deadline is checked.
// ec is set when the call must not go on.
class io_turn {
 public:
  io_turn(rt::mutex& m, const std::atomic<std::int64_t>& deadline, std::error_code& ec) noexcept {
    try {
      m.lock();
    } catch (...) {
      ec = sys_error(EDEADLK);  // rt::mutex::lock throws only on misuse
      return;
    }
    m_ = &m;
    if (detail::expired(load_deadline(deadline))) ec = deadline_error();
  }
  ~io_turn() {
    if (m_) m_->unlock();
  }
  io_turn(const io_turn&) = delete;
  io_turn& operator=(const io_turn&) = delete;

 private:
  rt::mutex* m_ = nullptr;
};

}  // namespace

// ---- conn -----------------------------------------------------------------------------------

conn::conn(int connected_fd) {
  const int fl = ::fcntl(connected_fd, F_GETFL);
  if (fl < 0 || ::fcntl(connected_fd, F_SETFL, fl | O_NONBLOCK) < 0) {
    throw std::system_error(sys_error(errno),
                            "rt::net::conn(" + std::to_string(connected_fd) + ")");
  }
  (void)::fcntl(connected_fd, F_SETFD, FD_CLOEXEC);
  detail::set_no_delay(connected_fd, true);
  sockaddr_storage ss{};
  socklen_t len = sizeof ss;
  address peer;
  if (::getpeername(connected_fd, reinterpret_cast<sockaddr*>(&ss), &len) == 0 &&
      (ss.ss_family == AF_INET || ss.ss_family == AF_INET6)) {
    peer = address::from_native(reinterpret_cast<sockaddr*>(&ss), len);
  }
  auto* s = new fd_state(connected_fd);
  try {
    s->pd = rt::detail::poll_open(connected_fd);
  } catch (const std::system_error& e) {
    delete s;  // the caller still owns connected_fd
    throw std::system_error(e.code(), "rt::net::conn(" + std::to_string(connected_fd) + ")");
  }
  s->peer = peer;
  s_ = s;
}

conn::~conn() {
  detail::destroy(s_);
}

conn& conn::operator=(conn&& o) noexcept {
  if (this != &o) {
    detail::destroy(s_);
    s_ = o.s_;
    o.s_ = nullptr;
  }
  return *this;
}

void conn::close() noexcept {
  // The state stays until the object is destroyed: a call starting later on this conn sees
  // `closing` and fails with net_errc::closed.
  if (s_ != nullptr) detail::close_state(s_);
}

std::size_t conn::read(void* buf, std::size_t n, std::error_code& ec) noexcept {
  ec.clear();
  fd_state* s = s_;
  call_ref ref(s);
  if (!ref) {
    ec = make_error_code(net_errc::closed);
    return 0;
  }
  if (n == 0) return 0;
  io_turn my_turn(s->read_mu, s->read_deadline, ec);
  if (ec) return 0;
  for (;;) {
    const ssize_t r = ::recv(s->fd, buf, n, 0);
    if (r > 0) return static_cast<std::size_t>(r);
    if (r == 0) {
      if (detail::is_closing(s)) ec = make_error_code(net_errc::closed);
      return 0;
    }
    const int e = errno;
    if (e == EINTR) continue;
    if (e != EAGAIN && e != EWOULDBLOCK) {
      ec = detail::is_closing(s) ? make_error_code(net_errc::closed) : sys_error(e);
      return 0;
    }
    if (!ref.wait(rt::detail::poll_mode::read, load_deadline(s->read_deadline), ec)) {
      return 0;
    }
  }
}

std::size_t conn::read(void* buf, std::size_t n) {
  std::error_code ec;
  const std::size_t r = read(buf, n, ec);
  if (ec) throw_error("rt::net::conn::read", peer_of(s_), ec);
  return r;
}

std::size_t conn::read_full(void* buf, std::size_t n, std::error_code& ec) noexcept {
  ec.clear();
  auto* p = static_cast<char*>(buf);
  std::size_t done = 0;
  while (done < n) {
    const std::size_t r = read(p + done, n - done, ec);
    if (ec) return done;
    if (r == 0) {
      ec = make_error_code(net_errc::unexpected_eof);
      return done;
    }
    done += r;
  }
  return done;
}

void conn::read_full(void* buf, std::size_t n) {
  std::error_code ec;
  const std::size_t r = read_full(buf, n, ec);
  if (ec) {
    if (ec == net_errc::unexpected_eof) {
      const std::string got = " (" + std::to_string(r) + " of " + std::to_string(n) + " bytes)";
      throw_error("rt::net::conn::read_full", peer_of(s_), ec, got.c_str());
    }
    throw_error("rt::net::conn::read_full", peer_of(s_), ec);
  }
}

std::size_t conn::write_all(const void* buf, std::size_t n, std::error_code& ec) noexcept {
  ec.clear();
  fd_state* s = s_;
  call_ref ref(s);
  if (!ref) {
    ec = make_error_code(net_errc::closed);
    return 0;
  }
  io_turn my_turn(s->write_mu, s->write_deadline, ec);
  if (ec) return 0;
  const auto* p = static_cast<const char*>(buf);
  std::size_t done = 0;
  while (done < n) {
    const ssize_t r = ::send(s->fd, p + done, n - done, MSG_NOSIGNAL);
    if (r >= 0) {
      done += static_cast<std::size_t>(r);
      continue;
    }
    const int e = errno;
    if (e == EINTR) continue;
    if (e != EAGAIN && e != EWOULDBLOCK) {
      ec = detail::is_closing(s) ? make_error_code(net_errc::closed) : sys_error(e);
      return done;
    }
    if (!ref.wait(rt::detail::poll_mode::write, load_deadline(s->write_deadline), ec)) {
      return done;
    }
  }
  return done;
}

void conn::write_all(const void* buf, std::size_t n) {
  std::error_code ec;
  write_all(buf, n, ec);
  if (ec) throw_error("rt::net::conn::write_all", peer_of(s_), ec);
}

namespace {
void shutdown_conn(fd_state* s, int how, const char* call) {
  call_ref ref(s);
  if (!ref) throw_error(call, peer_of(s), make_error_code(net_errc::closed));
  if (::shutdown(s->fd, how) != 0) throw_error(call, peer_of(s), sys_error(errno));
}
}  // namespace

void conn::shutdown_write() {
  shutdown_conn(s_, SHUT_WR, "rt::net::conn::shutdown_write");
}
void conn::shutdown_read() {
  shutdown_conn(s_, SHUT_RD, "rt::net::conn::shutdown_read");
}

void conn::set_deadline(std::chrono::steady_clock::time_point t) noexcept {
  set_read_deadline(t);
  set_write_deadline(t);
}
void conn::set_read_deadline(std::chrono::steady_clock::time_point t) noexcept {
  // Relaxed: see fd_state::read_deadline.
  if (s_ != nullptr) s_->read_deadline.store(rt::detail::deadline_ns(t), std::memory_order_relaxed);
}
void conn::set_write_deadline(std::chrono::steady_clock::time_point t) noexcept {
  // Relaxed: see fd_state::read_deadline.
  if (s_ != nullptr) {
    s_->write_deadline.store(rt::detail::deadline_ns(t), std::memory_order_relaxed);
  }
}

void conn::set_no_delay(bool on) {
  call_ref ref(s_);
  if (!ref) throw_error("rt::net::conn::set_no_delay", peer_of(s_), net_errc::closed);
  int v = on ? 1 : 0;
  if (::setsockopt(s_->fd, IPPROTO_TCP, TCP_NODELAY, &v, sizeof v) != 0) {
    throw_error("rt::net::conn::set_no_delay", peer_of(s_), sys_error(errno));
  }
}

address conn::local_address() const {
  call_ref ref(s_);
  if (!ref) throw_error("rt::net::conn::local_address", peer_of(s_), net_errc::closed);
  sockaddr_storage ss{};
  socklen_t len = sizeof ss;
  if (::getsockname(s_->fd, reinterpret_cast<sockaddr*>(&ss), &len) != 0) {
    throw_error("rt::net::conn::local_address", peer_of(s_), sys_error(errno));
  }
  if (ss.ss_family != AF_INET && ss.ss_family != AF_INET6) return {};
  return address::from_native(reinterpret_cast<sockaddr*>(&ss), len);
}

address conn::remote_address() const {
  return peer_of(s_);
}

int conn::native_handle() const noexcept {
  return is_open() ? s_->fd : -1;
}

bool conn::is_open() const noexcept {
  // Relaxed: a snapshot; a concurrent close() may make it stale at once either way.
  return s_ != nullptr && !(s_->ref.load(std::memory_order_relaxed) & fd_state::closing);
}

// ---- listener -------------------------------------------------------------------------------

listener::~listener() {
  detail::destroy(s_);
}

listener& listener::operator=(listener&& o) noexcept {
  if (this != &o) {
    detail::destroy(s_);
    s_ = o.s_;
    o.s_ = nullptr;
  }
  return *this;
}

void listener::close() noexcept {
  if (s_ != nullptr) detail::close_state(s_);
}

conn listener::accept(std::error_code& ec) noexcept {
  ec.clear();
  fd_state* s = s_;
  call_ref ref(s);
  if (!ref) {
    ec = make_error_code(net_errc::closed);
    return {};
  }
  io_turn my_turn(s->read_mu, s->read_deadline, ec);
  if (ec) return {};
  for (;;) {
    sockaddr_storage ss{};
    socklen_t len = sizeof ss;
    const int fd =
        ::accept4(s->fd, reinterpret_cast<sockaddr*>(&ss), &len, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd >= 0) {
      detail::set_no_delay(fd, true);
      fd_state* c = detail::open_state(fd, ec);
      if (c == nullptr) return {};
      if (ss.ss_family == AF_INET || ss.ss_family == AF_INET6) {
        c->peer = address::from_native(reinterpret_cast<sockaddr*>(&ss), len);
      }
      return detail::access::make_conn(c);
    }
    const int e = errno;
    // ECONNABORTED: that connection was reset while queued; take the next one (Go does too).
    if (e == EINTR || e == ECONNABORTED) continue;
    if (e != EAGAIN && e != EWOULDBLOCK) {
      ec = detail::is_closing(s) ? make_error_code(net_errc::closed) : sys_error(e);
      return {};
    }
    if (!ref.wait(rt::detail::poll_mode::read, load_deadline(s->read_deadline), ec)) {
      return {};
    }
  }
}

conn listener::accept() {
  std::error_code ec;
  conn c = accept(ec);
  if (ec) {
    const char* advice = nullptr;
    if (ec == std::errc::too_many_files_open || ec == std::errc::too_many_files_open_in_system) {
      advice =
          " (out of file descriptors: the connection waits in the backlog and the listener stays "
          "usable; close connections or raise RLIMIT_NOFILE, then accept again)";
    }
    throw_error("rt::net::listener::accept", peer_of(s_), ec, advice);
  }
  return c;
}

void listener::set_deadline(std::chrono::steady_clock::time_point t) noexcept {
  // Relaxed: see fd_state::read_deadline.
  if (s_ != nullptr) s_->read_deadline.store(rt::detail::deadline_ns(t), std::memory_order_relaxed);
}

address listener::local_address() const {
  return peer_of(s_);
}

int listener::native_handle() const noexcept {
  return is_open() ? s_->fd : -1;
}

bool listener::is_open() const noexcept {
  // Relaxed: a snapshot, as conn::is_open.
  return s_ != nullptr && !(s_->ref.load(std::memory_order_relaxed) & fd_state::closing);
}

// ---- listen / dial --------------------------------------------------------------------------

namespace {

// host_port -> the addresses to use: numeric directly, names through resolve() (the pool),
// "" host (":8080") -> 0.0.0.0. Throws std::invalid_argument for a malformed host_port.
std::vector<address> addresses_of(const char* call, std::string_view host_port) {
  if (auto a = address::try_parse(host_port)) return {*a};
  auto parts = split_host_port(host_port);
  if (!parts) {
    throw std::invalid_argument(std::string(call) + ": \"" + std::string(host_port) +
                                "\" is not host:port (\"127.0.0.1:80\", \"[::1]:80\", "
                                "\"localhost:80\")");
  }
  if (parts->host.empty()) {
    auto p = parse_port(parts->port);
    if (!p) return resolve("0.0.0.0", parts->port);
    return {address::parse("0.0.0.0:" + std::to_string(*p))};
  }
  return resolve(parts->host, parts->port);
}

// connect() on the registered, non-blocking fd and wait for the handshake; false with ec set.
bool connect_wait(call_ref& ref, int fd, const address& a, std::int64_t deadline,
                  std::error_code& ec) noexcept {
  // EINTR: the connection attempt goes on in the background; wait for it as for EINPROGRESS.
  if (::connect(fd, a.native(), a.native_size()) == 0) return true;
  if (errno != EINPROGRESS && errno != EINTR) {
    ec = sys_error(errno);
    return false;
  }
  for (;;) {
    if (!ref.wait(rt::detail::poll_mode::write, deadline, ec)) return false;
    int err = 0;
    socklen_t len = sizeof err;
    if (::getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0) err = errno;
    if (err != 0 && err != EINPROGRESS && err != EALREADY && err != EINTR) {
      ec = sys_error(err);
      return false;
    }
    // A `ready` may be spurious: connected only once the kernel names the peer.
    sockaddr_storage ss{};
    socklen_t sl = sizeof ss;
    if (::getpeername(fd, reinterpret_cast<sockaddr*>(&ss), &sl) == 0) return true;
  }
}

// Connects to a; on success the state of the connected socket, else nullptr with ec set.
fd_state* connect_to(const address& a, std::int64_t deadline, std::error_code& ec) noexcept {
  if (detail::expired(deadline)) {
    ec = deadline_error();
    return nullptr;
  }
  const int fd =
      ::socket(a.native()->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, IPPROTO_TCP);
  if (fd < 0) {
    ec = sys_error(errno);
    return nullptr;
  }
  detail::set_no_delay(fd, true);
  // Registered before connect() so the writability edge of the completed handshake is seen.
  fd_state* s = detail::open_state(fd, ec);
  if (s == nullptr) return nullptr;
  s->peer = a;
  bool ok;
  {
    // Nobody else knows s yet; the call reference keeps wait()'s accounting uniform.
    call_ref ref(s);
    ok = connect_wait(ref, fd, a, deadline, ec);
  }
  if (!ok) {
    detail::destroy(s);
    return nullptr;
  }
  return s;
}

fd_state* dial_impl(std::string_view host_port, std::int64_t deadline, std::error_code& ec,
                    address& tried) {
  std::vector<address> addrs = addresses_of("rt::net::dial", host_port);
  for (std::size_t i = 0; i < addrs.size(); ++i) {
    tried = addrs[i];
    // Each remaining address gets an equal share of the time left (at least 2 s, as Go does),
    // so one unresponsive address does not use up the whole timeout.
    std::int64_t d = deadline;
    const std::size_t left = addrs.size() - i;
    if (left > 1 && deadline != rt::detail::no_deadline) {
      const std::int64_t now = rt::detail::now_ns();
      const std::int64_t share = std::max<std::int64_t>((deadline - now) / left, 2'000'000'000);
      d = std::min(deadline, now + share);
    }
    ec.clear();
    if (fd_state* s = connect_to(addrs[i], d, ec)) return s;
  }
  if (!ec) ec = sys_error(EADDRNOTAVAIL);
  return nullptr;
}

}  // namespace

listener listen(std::string_view host_port, int backlog) {
  const std::vector<address> addrs = addresses_of("rt::net::listen", host_port);
  const address& a = addrs.front();
  const int fd =
      ::socket(a.native()->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, IPPROTO_TCP);
  if (fd < 0) throw_error("rt::net::listen", a, sys_error(errno));
  int one = 1;
  (void)::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (::bind(fd, a.native(), a.native_size()) != 0 || ::listen(fd, backlog) != 0) {
    const int e = errno;
    ::close(fd);
    throw_error("rt::net::listen", a, sys_error(e));
  }
  sockaddr_storage ss{};
  socklen_t len = sizeof ss;
  address local = a;
  if (::getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &len) == 0) {
    local = address::from_native(reinterpret_cast<sockaddr*>(&ss), len);
  }
  std::error_code ec;
  fd_state* s = detail::open_state(fd, ec);
  if (s == nullptr) throw_error("rt::net::listen", a, ec);
  s->peer = local;
  return detail::access::make_listener(s);
}

conn dial(const address& a, std::chrono::steady_clock::time_point deadline) {
  std::error_code ec;
  fd_state* s = connect_to(a, rt::detail::deadline_ns(deadline), ec);
  if (s == nullptr) throw_error("rt::net::dial", a, ec);
  return detail::access::make_conn(s);
}

conn dial(std::string_view host_port, std::chrono::nanoseconds timeout) {
  std::error_code ec;
  address tried;
  fd_state* s =
      dial_impl(host_port, rt::detail::deadline_ns(rt::detail::deadline_after(timeout)), ec, tried);
  if (s == nullptr) {
    if (tried.empty()) throw std::system_error(ec, "rt::net::dial " + std::string(host_port));
    throw_error("rt::net::dial", tried, ec);
  }
  return detail::access::make_conn(s);
}

conn dial(std::string_view host_port) {
  return dial(host_port, std::chrono::nanoseconds::max());
}

conn dial(std::string_view host_port, std::chrono::nanoseconds timeout,
          std::error_code& ec) noexcept {
  ec.clear();
  address tried;
  try {
    fd_state* s = dial_impl(host_port, rt::detail::deadline_ns(rt::detail::deadline_after(timeout)),
                            ec, tried);
    return s ? detail::access::make_conn(s) : conn();
  } catch (const std::system_error& e) {
    ec = e.code();
  } catch (const std::invalid_argument&) {
    ec = std::make_error_code(std::errc::invalid_argument);
  } catch (...) {
    ec = sys_error(ENOMEM);
  }
  return {};
}

conn dial(std::string_view host_port, std::error_code& ec) noexcept {
  return dial(host_port, std::chrono::nanoseconds::max(), ec);
}

}  // namespace rt::net
