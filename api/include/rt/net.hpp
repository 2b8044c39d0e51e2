// rt/net.hpp — TCP networking on fibers (Go's package net): every blocking call parks only the
// calling fiber; the worker meanwhile runs others (the netpoller wakes the fiber).
//
//   rt::net::listener ln = rt::net::listen("127.0.0.1:8080");
//   for (;;) {
//     rt::net::conn c = ln.accept();
//     rt::go([c = std::move(c)]() mutable {          // one fiber per connection, plain code
//       char buf[4096];
//       while (std::size_t n = c.read(buf, sizeof buf)) c.write_all(buf, n);
//     });
//   }
//
// Errors follow the standard library: the throwing calls throw std::system_error whose code() is
// an errno value (compare with std::errc: connection_reset, broken_pipe, connection_refused,
// timed_out for a deadline) or one of net_errc (closed, unexpected_eof), and whose what() names
// the call and the address, e.g. "rt::net::conn::read 127.0.0.1:5000: i/o timeout". Each call
// also has a noexcept overload that reports through a std::error_code instead. Nothing raises
// SIGPIPE. IPv4 and IPv6 ("[::1]:8080"). Works from plain threads too (they block in poll(2)).
#pragma once

#include <netinet/in.h>
#include <sys/socket.h>

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>
#include <type_traits>
#include <vector>

namespace rt::net {

// Error codes of rt::net's own category (net_category(), name "rt::net"); everything else is
// errno (std::generic_category values, so `ec == std::errc::connection_reset` works). Deadlines
// give std::errc::timed_out.
enum class net_errc {
  closed = 1,          // "use of closed network connection" (Go's net.ErrClosed)
  unexpected_eof = 2,  // read_full hit end of stream before n bytes (io.ErrUnexpectedEOF)
};
const std::error_category& net_category() noexcept;
std::error_code make_error_code(net_errc) noexcept;
// getaddrinfo's EAI_* codes (category name "getaddrinfo", messages from gai_strerror), as
// resolve's std::system_error carries them; EAI_SYSTEM is reported as its errno instead.
const std::error_category& resolve_category() noexcept;

}  // namespace rt::net

template <>
struct std::is_error_code_enum<rt::net::net_errc> : std::true_type {};

namespace rt::net {

namespace detail {
struct fd_state;  // the descriptor, its netpoller registration, deadlines (runtime/net.cpp)
struct access;    // builds conns and listeners from an fd_state (runtime/net.cpp)
}  // namespace detail

// An IPv4 or IPv6 address with a port (a value type; numeric only — resolve() looks up names).
//
//   auto a = rt::net::address::parse("[::1]:8080");   // a.port() == 8080, a.is_v6()
//   std::cout << a.to_string();                       // "[::1]:8080"
class address {
 public:
  address() = default;  // the empty address (family AF_UNSPEC, to_string() "")
  // "127.0.0.1:80", "[::1]:80", "[fe80::1%2]:80"; throws std::invalid_argument naming the input.
  static address parse(std::string_view host_port);
  // As parse, returning nullopt for anything that is not a numeric address with a port.
  static std::optional<address> try_parse(std::string_view host_port) noexcept;
  // From a sockaddr_in / sockaddr_in6; throws std::invalid_argument for another family.
  static address from_native(const sockaddr* sa, socklen_t len);
  std::string to_string() const;  // "127.0.0.1:80", "[::1]:80"; "" for the empty address
  std::string host() const;       // "127.0.0.1", "::1" (no brackets, no port)
  std::uint16_t port() const noexcept;
  bool is_v6() const noexcept;
  bool empty() const noexcept { return native_.sa.sa_family == AF_UNSPEC; }
  const sockaddr* native() const noexcept { return &native_.sa; }
  socklen_t native_size() const noexcept;
  friend bool operator==(const address&, const address&) noexcept;

 private:
  union storage {
    sockaddr sa;
    sockaddr_in v4;
    sockaddr_in6 v6;
  } native_{};
};

// Name resolution through rt::blocking (getaddrinfo, so the worker runs other fibers meanwhile):
// resolve("localhost", "8080") -> its addresses, in getaddrinfo's order. A numeric host is
// converted without the pool. Throws std::system_error naming host and port (resolve_category()
// for EAI_* codes, e.g. EAI_NONAME).
std::vector<address> resolve(std::string_view host, std::string_view port);

// A TCP connection; move-only; closes its socket on destruction.
//
//   rt::net::conn c = rt::net::dial("127.0.0.1:8080", std::chrono::seconds(5));
//   c.set_read_deadline(std::chrono::steady_clock::now() + std::chrono::seconds(10));
//   c.write_all("ping\n");
//   char reply[5];
//   c.read_full(reply, sizeof reply);                  // throws on EOF, error or deadline
//
// One fiber may read while another writes; close() from any fiber wakes both with
// net_errc::closed. The object itself must outlive calls that start on it; its descriptor and
// state live until the last call inside it returns (so destroying the conn while another fiber
// is parked in read() on it is safe too: that read wakes with `closed`).
class conn {
 public:
  conn() noexcept = default;
  // Adopts a connected socket (made non-blocking and close-on-exec, registered with the
  // netpoller); throws std::system_error if it cannot be (EBADF: not open).
  explicit conn(int connected_fd);
  conn(conn&& o) noexcept : s_(o.s_) { o.s_ = nullptr; }
  conn& operator=(conn&& o) noexcept;
  conn(const conn&) = delete;
  conn& operator=(const conn&) = delete;
  ~conn();  // close(), and frees the state once no call is inside

  // Reads at least 1 byte, or returns 0 at end of stream (or for n == 0); parks the fiber while
  // no data is available. Throws std::system_error (errno, timed_out, net_errc::closed).
  std::size_t read(void* buf, std::size_t n);
  std::size_t read(void* buf, std::size_t n, std::error_code& ec) noexcept;
  // Exactly n bytes, else throws (net_errc::unexpected_eof if the stream ended first, errno,
  // timed_out). The error_code overload returns the bytes read (0 with unexpected_eof: the
  // stream ended cleanly before the first byte).
  void read_full(void* buf, std::size_t n);
  std::size_t read_full(void* buf, std::size_t n, std::error_code& ec) noexcept;
  // Writes all n bytes; EPIPE / ECONNRESET throw, never SIGPIPE (MSG_NOSIGNAL). The error_code
  // overload returns the bytes written.
  void write_all(const void* buf, std::size_t n);
  std::size_t write_all(const void* buf, std::size_t n, std::error_code& ec) noexcept;
  void write_all(std::string_view s) { write_all(s.data(), s.size()); }
  void shutdown_write();  // half-close: the peer reads end of stream; reading goes on
  void shutdown_read();   // later reads return end of stream
  // Idempotent; fibers parked in read/write on it wake with net_errc::closed; the descriptor
  // itself is closed once no call is inside a system call on it.
  void close() noexcept;

  // Deadlines (absolute, steady clock; time_point::max(): none) are read when a call starts and
  // at each wait: a call after the deadline fails with std::errc::timed_out ("i/o timeout"), even
  // if data is available, until a new deadline is set. A wait already parked keeps the deadline
  // it started with.
  void set_deadline(std::chrono::steady_clock::time_point t) noexcept;  // read and write
  void set_read_deadline(std::chrono::steady_clock::time_point t) noexcept;
  void set_write_deadline(std::chrono::steady_clock::time_point t) noexcept;
  void set_no_delay(bool on);  // TCP_NODELAY (on by default, as in Go)

  address local_address() const;       // getsockname; throws if closed
  address remote_address() const;      // the peer, as connected/accepted (kept after close)
  int native_handle() const noexcept;  // -1 when closed or empty
  bool is_open() const noexcept;
  explicit operator bool() const noexcept { return is_open(); }

 private:
  friend struct detail::access;
  explicit conn(detail::fd_state* s) noexcept : s_(s) {}
  detail::fd_state* s_ = nullptr;
};

// A listening TCP socket; move-only.
//
//   rt::net::listener ln = rt::net::listen("[::1]:0");  // port 0: any free port
//   std::uint16_t port = ln.local_address().port();
//   rt::go([&] { stop.recv(); ln.close(); });            // Go's idiom to stop a server:
//   try { for (;;) serve(ln.accept()); }                 // accept wakes with net_errc::closed
//   catch (const std::system_error& e) { if (e.code() != rt::net::net_errc::closed) throw; }
class listener {
 public:
  listener() noexcept = default;
  listener(listener&& o) noexcept : s_(o.s_) { o.s_ = nullptr; }
  listener& operator=(listener&& o) noexcept;
  listener(const listener&) = delete;
  listener& operator=(const listener&) = delete;
  ~listener();

  // Parks until a connection arrives. EMFILE/ENFILE (out of descriptors) throw std::system_error
  // saying so; the listener stays usable (the pending connection waits in the backlog: accept
  // again once descriptors are free).
  conn accept();
  conn accept(std::error_code& ec) noexcept;
  // accept gives std::errc::timed_out after it (time_point::max(): none).
  void set_deadline(std::chrono::steady_clock::time_point t) noexcept;
  // Idempotent; a fiber parked in accept wakes with net_errc::closed.
  void close() noexcept;
  address local_address() const;  // the bound address (the real port when listening on port 0)
  int native_handle() const noexcept;
  bool is_open() const noexcept;
  explicit operator bool() const noexcept { return is_open(); }

 private:
  friend struct detail::access;
  explicit listener(detail::fd_state* s) noexcept : s_(s) {}
  detail::fd_state* s_ = nullptr;
};

// Listens on "127.0.0.1:0" (port 0: any), "[::1]:8080", "localhost:8080" (the first address
// resolved), ":8080" (every IPv4 address); SO_REUSEADDR. Throws std::system_error naming the
// address (EADDRINUSE, EACCES, ...) or std::invalid_argument for a malformed one.
listener listen(std::string_view host_port, int backlog = 4096);
// Connects without blocking the worker. Numeric addresses connect directly; names are resolved
// (rt::blocking) and their addresses tried in order until one connects. Throws std::system_error
// naming the address (ECONNREFUSED, timed_out, ...).
conn dial(std::string_view host_port);
conn dial(std::string_view host_port, std::chrono::nanoseconds timeout);
conn dial(const address& a, std::chrono::steady_clock::time_point deadline =
                                std::chrono::steady_clock::time_point::max());
// error_code overloads of dial (an empty conn on error).
conn dial(std::string_view host_port, std::error_code& ec) noexcept;
conn dial(std::string_view host_port, std::chrono::nanoseconds timeout,
          std::error_code& ec) noexcept;

}  // namespace rt::net
