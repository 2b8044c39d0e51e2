// tests/net_test.cpp — rt::net (issue 11): addresses, resolution, TCP between fibers and with
// plain threads, errors (closed, EOF, reset, refused, deadlines, out of descriptors), close()
// from another fiber, and shutdown with connections open. Loopback only (127.0.0.1, ::1), port 0.
//
// Every test checks that it leaks no descriptor (/proc/self/fd counted before and after) and
// stops by itself: no test waits for an event without a bound, none uses sleep to synchronise.
#include <dirent.h>
#include <gtest/gtest.h>
#include <netdb.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>
#include <rt/csp.hpp>
#include <rt/net.hpp>

#include <atomic>
#include <chrono>
#include <cstring>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "test_support.hpp"

namespace {

using namespace std::chrono_literals;
using rt_test::kSanitized;
using rt_test::kSlow;
using rt_test::with_workers;
namespace net = rt::net;

constexpr unsigned kWorkerCounts[] = {1, 2, 4, 8};

int fd_count() {
  int n = 0;
  DIR* d = ::opendir("/proc/self/fd");
  if (d == nullptr) return -1;
  while (dirent* e = ::readdir(d)) {
    if (e->d_name[0] != '.') ++n;
  }
  ::closedir(d);
  return n;  // includes the directory's own descriptor, the same each time
}

// Each test counts descriptors before and after. The netpoller's own descriptors (epoll,
// eventfd) are created once per process: a first listener in SetUpTestSuite creates them.
class Net : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    rt::run([] {
      net::listener ln = net::listen("127.0.0.1:0");
      (void)ln;
    });
  }
  void SetUp() override { fds_before_ = fd_count(); }
  void TearDown() override { EXPECT_EQ(fd_count(), fds_before_) << "a descriptor leaked"; }
  int fds_before_ = 0;
};
using NetHeavy = Net;

// Echoes each connection until its peer closes it; stops when the listener is closed.
void echo_server(net::listener& ln, rt::wait_group& handlers) {
  for (;;) {
    std::error_code ec;
    net::conn c = ln.accept(ec);
    if (ec) {
      EXPECT_EQ(ec, net::net_errc::closed) << ec.message();
      return;
    }
    handlers.add(1);
    rt::go([c = std::move(c), &handlers]() mutable {
      char buf[4096];
      for (;;) {
        std::error_code e;
        const std::size_t n = c.read(buf, sizeof buf, e);
        if (e || n == 0) break;
        c.write_all(buf, n, e);
        if (e) break;
      }
      handlers.done();
    });
  }
}

// One round trip of `msg` through an echo server at `at`.
void echo_once(const net::address& at, const std::string& msg) {
  net::conn c = net::dial(at);
  EXPECT_EQ(c.remote_address(), at);
  c.write_all(msg);
  std::string got(msg.size(), '\0');
  c.read_full(got.data(), got.size());
  EXPECT_EQ(got, msg);
}

// --- addresses and resolution ----------------------------------------------------------------

TEST_F(Net, AddressParseAndFormat) {
  auto a = net::address::parse("127.0.0.1:80");
  EXPECT_FALSE(a.is_v6());
  EXPECT_EQ(a.port(), 80);
  EXPECT_EQ(a.to_string(), "127.0.0.1:80");
  auto b = net::address::parse("[::1]:8080");
  EXPECT_TRUE(b.is_v6());
  EXPECT_EQ(b.port(), 8080);
  EXPECT_EQ(b.to_string(), "[::1]:8080");
  EXPECT_EQ(b.host(), "::1");
  EXPECT_EQ(net::address::from_native(b.native(), b.native_size()), b);
  EXPECT_FALSE(a == b);
  EXPECT_TRUE(net::address().empty());
  EXPECT_EQ(net::address().to_string(), "");
  for (const char* bad : {"", "127.0.0.1", "127.0.0.1:", "127.0.0.1:65536", "::1:80", "[::1]",
                          "[::1]80", "localhost:80", "1.2.3.4:-1", "1.2.3.4:8x", "[1.2.3.4]:80"}) {
    EXPECT_FALSE(net::address::try_parse(bad).has_value()) << bad;
    const std::string what =
        rt_test::what_of<std::invalid_argument>([&] { net::address::parse(bad); });
    EXPECT_NE(what.find("rt::net::address::parse"), std::string::npos) << what;
    EXPECT_NE(what.find(std::string("\"") + bad + "\""), std::string::npos) << what;
  }
}

TEST_F(Net, ResolveNumericAndLocalhost) {
  auto v = net::resolve("::1", "9");
  ASSERT_EQ(v.size(), 1u);
  EXPECT_EQ(v[0].to_string(), "[::1]:9");
  // A minimal system (a fresh debootstrap) may have no /etc/hosts: then the name is unknown to
  // getaddrinfo itself, which is not rt::net's to test.
  addrinfo* probe = nullptr;
  if (::getaddrinfo("localhost", "8080", nullptr, &probe) != 0) {
    GTEST_SKIP() << "getaddrinfo cannot resolve \"localhost\" on this system (no /etc/hosts?)";
  }
  ::freeaddrinfo(probe);
  rt::run([] {
    auto l = net::resolve("localhost", "8080");
    ASSERT_FALSE(l.empty());
    for (const auto& a : l) EXPECT_EQ(a.port(), 8080);
  });
}

TEST_F(Net, ResolveErrorNamesHostAndPort) {
  rt::run([] {
    try {
      net::resolve("localhost", "no-such-service-rt");
      ADD_FAILURE() << "did not throw";
    } catch (const std::system_error& e) {
      EXPECT_EQ(&e.code().category(), &net::resolve_category());
      EXPECT_NE(std::string(e.what()).find("localhost no-such-service-rt"), std::string::npos)
          << e.what();
    }
  });
}

// --- round trips -----------------------------------------------------------------------------

void echo_round_trip(const char* listen_at, unsigned workers) {
  rt::run(
      [&] {
        net::listener ln = net::listen(listen_at);
        EXPECT_NE(ln.local_address().port(), 0);
        rt::wait_group handlers, server;
        server.add(1);
        rt::go([&] {
          echo_server(ln, handlers);
          server.done();
        });
        for (int i = 0; i < 20; ++i) echo_once(ln.local_address(), "hello " + std::to_string(i));
        ln.close();
        server.wait();
        handlers.wait();
      },
      with_workers(workers));
}

TEST_F(Net, EchoRoundTripV4) {
  for (unsigned w : kWorkerCounts) echo_round_trip("127.0.0.1:0", w);
}

TEST_F(Net, EchoRoundTripV6) {
  // Hosts without IPv6 on loopback cannot bind ::1.
  try {
    rt::run([] { net::listen("[::1]:0"); });
  } catch (const std::system_error& e) {
    GTEST_SKIP() << "no IPv6 loopback: " << e.what();
  }
  for (unsigned w : kWorkerCounts) echo_round_trip("[::1]:0", w);
}

TEST_F(Net, LocalAndRemoteAddressesAgree) {
  rt::run([] {
    net::listener ln = net::listen("127.0.0.1:0");
    net::conn c = net::dial(ln.local_address().to_string());  // the string overload
    net::conn s = ln.accept();
    EXPECT_EQ(c.remote_address(), ln.local_address());
    EXPECT_EQ(s.local_address(), ln.local_address());
    EXPECT_EQ(s.remote_address(), c.local_address());
    EXPECT_GE(c.native_handle(), 0);
    EXPECT_TRUE(c.is_open());
    c.close();
    EXPECT_FALSE(c.is_open());
    EXPECT_FALSE(static_cast<bool>(c));
    EXPECT_EQ(c.native_handle(), -1);
    c.close();  // idempotent
  });
}

// A plain thread (no fiber) is the client, with rt::net (poll(2) inside) and with raw sockets.
TEST_F(Net, PlainThreadClientAgainstFiberServer) {
  for (unsigned w : kWorkerCounts) {
    rt::run(
        [&] {
          net::listener ln = net::listen("127.0.0.1:0");
          rt::wait_group handlers, server, client;
          server.add(1);
          rt::go([&] {
            echo_server(ln, handlers);
            server.done();
          });
          client.add(1);
          const net::address at = ln.local_address();
          std::thread t([&] {
            echo_once(at, "from a plain thread");
            // Raw blocking socket, nothing of rt::net.
            int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
            ASSERT_GE(fd, 0);
            ASSERT_EQ(::connect(fd, at.native(), at.native_size()), 0);
            ASSERT_EQ(::send(fd, "raw", 3, MSG_NOSIGNAL), 3);
            char buf[3];
            std::size_t got = 0;
            while (got < 3) {
              ssize_t r = ::recv(fd, buf + got, 3 - got, 0);
              ASSERT_GT(r, 0);
              got += static_cast<std::size_t>(r);
            }
            EXPECT_EQ(std::string(buf, 3), "raw");
            ::close(fd);
            client.done();
          });
          client.wait();
          t.join();
          ln.close();
          server.wait();
          handlers.wait();
        },
        with_workers(w));
  }
}

// No rt::run at all: two plain threads talk through rt::net (each call blocks its thread).
TEST_F(Net, PlainThreadsWithoutRuntime) {
  net::listener ln = net::listen("127.0.0.1:0");
  std::thread server([&] {
    net::conn s = ln.accept();
    char buf[64];
    while (std::size_t n = s.read(buf, sizeof buf)) s.write_all(buf, n);
  });
  {
    net::conn c = net::dial(ln.local_address());
    c.write_all("no runtime");
    char buf[10];
    c.read_full(buf, sizeof buf);
    EXPECT_EQ(std::string(buf, 10), "no runtime");
    c.shutdown_write();
    EXPECT_EQ(c.read(buf, sizeof buf), 0u);
  }
  server.join();
}

// An adopted descriptor (conn(int)) works like a dialled one.
TEST_F(Net, AdoptConnectedSocket) {
  rt::run([] {
    net::listener ln = net::listen("127.0.0.1:0");
    int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    ASSERT_GE(fd, 0);
    const net::address at = ln.local_address();
    ASSERT_EQ(::connect(fd, at.native(), at.native_size()), 0);  // completes against the backlog
    net::conn c(fd);
    EXPECT_EQ(c.remote_address(), at);
    net::conn s = ln.accept();
    c.write_all("adopted");
    char buf[7];
    s.read_full(buf, sizeof buf);
    EXPECT_EQ(std::string(buf, 7), "adopted");
    EXPECT_THROW(net::conn(-1), std::system_error);
  });
}

// Many clients at once, each a fiber, against one accept loop.
TEST_F(Net, ManyConcurrentConnections) {
  const int n = static_cast<int>(rt_test::scaled(1000, 100));
  for (unsigned w : kWorkerCounts) {
    std::atomic<int> ok{0};
    rt::run(
        [&] {
          net::listener ln = net::listen("127.0.0.1:0", n);
          rt::wait_group handlers, server, clients;
          server.add(1);
          rt::go([&] {
            echo_server(ln, handlers);
            server.done();
          });
          clients.add(n);
          for (int i = 0; i < n; ++i) {
            rt::go([&, i] {
              echo_once(ln.local_address(), "client " + std::to_string(i));
              ok.fetch_add(1);
              clients.done();
            });
          }
          clients.wait();
          ln.close();
          server.wait();
          handlers.wait();
        },
        with_workers(w));
    EXPECT_EQ(ok.load(), n) << w << " workers";
  }
}

// Several fibers read one conn, and several accept on one listener, at once: every byte and
// every connection reaches one of them. Without calls taking turns per direction (fd_state's
// read_mu), one caller can take the netpoller's readiness edge, stop before EAGAIN (one byte
// read, one connection accepted) and leave another parked with data waiting and no edge to come.
TEST_F(Net, ConcurrentReadersAndAcceptorsShareOneDescriptor) {
  const int conns = static_cast<int>(rt_test::scaled(40, 10));
  const int bytes = 200;
  for (unsigned w : kWorkerCounts) {
    for (std::uint64_t seed : {0, 1, 2}) {
      std::atomic<int> got{0}, accepted{0};
      rt::options o = with_workers(w);
      o.chaos_seed = seed;
      rt::run(
          [&] {
            net::listener ln = net::listen("127.0.0.1:0");
            rt::wait_group acceptors, readers;
            std::vector<net::conn> server_side(static_cast<std::size_t>(conns));
            rt::mutex mu;
            int next = 0;
            for (int a = 0; a < 3; ++a) {
              acceptors.add(1);
              rt::go([&] {
                for (;;) {
                  std::error_code ec;
                  net::conn c = ln.accept(ec);
                  if (ec) break;
                  std::lock_guard lk(mu);
                  server_side[static_cast<std::size_t>(next++)] = std::move(c);
                  if (accepted.fetch_add(1) + 1 == conns) ln.close();
                }
                acceptors.done();
              });
            }
            std::vector<net::conn> clients;
            for (int i = 0; i < conns; ++i) clients.push_back(net::dial(ln.local_address()));
            acceptors.wait();
            for (auto& c : server_side) {
              for (int r = 0; r < 3; ++r) {  // three readers of one byte at a time
                readers.add(1);
                rt::go([&] {
                  char b;
                  while (c.read(&b, 1) == 1) got.fetch_add(1);
                  readers.done();
                });
              }
            }
            const std::string chunk(bytes / 4, 'x');
            for (auto& c : clients) {
              for (int k = 0; k < 4; ++k) c.write_all(chunk);
              c.shutdown_write();
            }
            readers.wait();
          },
          o);
      EXPECT_EQ(accepted.load(), conns) << w << " workers, chaos " << seed;
      EXPECT_EQ(got.load(), conns * bytes) << w << " workers, chaos " << seed;
    }
  }
}

// One fiber writes while another reads the same conn (both directions full: neither side could
// finish writing without the other reading meanwhile); the bytes arrive intact and in order.
TEST_F(Net, FullDuplexLargeTransfer) {
  const std::size_t total = static_cast<std::size_t>(rt_test::scaled(8 << 20, 1 << 20));
  for (unsigned w : kWorkerCounts) {
    rt::run(
        [&] {
          net::listener ln = net::listen("127.0.0.1:0");
          rt::wait_group handlers, server, done;
          server.add(1);
          rt::go([&] {
            echo_server(ln, handlers);
            server.done();
          });
          net::conn c = net::dial(ln.local_address());
          done.add(2);
          rt::go([&] {
            std::vector<unsigned char> chunk(64 * 1024);
            for (std::size_t sent = 0; sent < total; sent += chunk.size()) {
              for (std::size_t i = 0; i < chunk.size(); ++i) {
                chunk[i] = static_cast<unsigned char>((sent + i) * 7 / 5);
              }
              c.write_all(chunk.data(), chunk.size());
            }
            c.shutdown_write();
            done.done();
          });
          rt::go([&] {
            std::vector<unsigned char> buf(48 * 1024);
            std::size_t got = 0;
            bool intact = true;
            while (std::size_t n = c.read(buf.data(), buf.size())) {
              for (std::size_t i = 0; i < n; ++i) {
                intact = intact && buf[i] == static_cast<unsigned char>((got + i) * 7 / 5);
              }
              got += n;
            }
            EXPECT_EQ(got, total);
            EXPECT_TRUE(intact);
            done.done();
          });
          done.wait();
          c.close();
          ln.close();
          server.wait();
          handlers.wait();
        },
        with_workers(w));
  }
}

// --- errors ----------------------------------------------------------------------------------

// The peer vanishes (RST) while we write: EPIPE or ECONNRESET as std::system_error, and SIGPIPE
// (left at its default action, which kills) is never raised.
TEST_F(Net, PeerDisconnectsMidWrite) {
  struct sigaction old {};
  struct sigaction dfl {};
  dfl.sa_handler = SIG_DFL;
  sigemptyset(&dfl.sa_mask);
  ::sigaction(SIGPIPE, &dfl, &old);
  for (unsigned w : kWorkerCounts) {
    rt::run(
        [&] {
          net::listener ln = net::listen("127.0.0.1:0");
          auto peer_gone = rt::make_chan<int>();
          rt::wait_group writer;
          writer.add(1);
          rt::go([&] {
            net::conn s = ln.accept();
            char first[1];
            s.read_full(first, 1);  // the client is connected and has written
            peer_gone.recv();
            std::vector<char> chunk(64 * 1024, 'x');
            std::error_code ec;
            // Bounded: the peer's RST makes a send fail within a few chunks.
            for (int i = 0; i < 100000 && !ec; ++i) s.write_all(chunk.data(), chunk.size(), ec);
            EXPECT_TRUE(ec == std::errc::broken_pipe || ec == std::errc::connection_reset)
                << ec.message();
            try {
              s.write_all("more");
              ADD_FAILURE() << "write after the peer's reset did not throw";
            } catch (const std::system_error& e) {
              EXPECT_TRUE(e.code() == std::errc::broken_pipe ||
                          e.code() == std::errc::connection_reset)
                  << e.what();
              EXPECT_NE(std::string(e.what()).find("rt::net::conn::write_all 127.0.0.1:"),
                        std::string::npos)
                  << e.what();
            }
            writer.done();
          });
          {
            net::conn c = net::dial(ln.local_address());
            c.write_all("x");
            linger l{1, 0};  // close() sends RST at once
            ASSERT_EQ(::setsockopt(c.native_handle(), SOL_SOCKET, SO_LINGER, &l, sizeof l), 0);
          }
          peer_gone.send(1);
          writer.wait();
        },
        with_workers(w));
  }
  ::sigaction(SIGPIPE, &old, nullptr);
}

// Reading from a peer that reset the connection: ECONNRESET.
TEST_F(Net, ReadAfterPeerResetThrowsConnectionReset) {
  rt::run([] {
    net::listener ln = net::listen("127.0.0.1:0");
    net::conn c = net::dial(ln.local_address());
    net::conn s = ln.accept();
    linger l{1, 0};
    ASSERT_EQ(::setsockopt(c.native_handle(), SOL_SOCKET, SO_LINGER, &l, sizeof l), 0);
    c.close();
    char buf[8];
    std::error_code ec;
    s.read(buf, sizeof buf, ec);
    EXPECT_EQ(ec, std::errc::connection_reset) << ec.message();
  });
}

// Half-close: the client shuts its write side; the server reads to end of stream, then still
// writes back, and the client reads that and then end of stream.
TEST_F(Net, HalfClose) {
  for (unsigned w : kWorkerCounts) {
    rt::run(
        [&] {
          net::listener ln = net::listen("127.0.0.1:0");
          rt::wait_group server;
          server.add(1);
          rt::go([&] {
            net::conn s = ln.accept();
            std::string got;
            char buf[64];
            while (std::size_t n = s.read(buf, sizeof buf)) got.append(buf, n);
            EXPECT_EQ(got, "request");
            s.write_all("response to " + got);
            server.done();
          });
          net::conn c = net::dial(ln.local_address());
          c.write_all("request");
          c.shutdown_write();
          std::string reply;
          char buf[64];
          while (std::size_t n = c.read(buf, sizeof buf)) reply.append(buf, n);
          EXPECT_EQ(reply, "response to request");
          EXPECT_THROW(c.write_all("late"), std::system_error);  // EPIPE: we shut writing
          server.wait();
        },
        with_workers(w));
  }
}

// A slowloris client (one byte, then silence) is cut by the server's read deadline.
TEST_F(Net, SlowlorisCutByReadDeadline) {
  for (unsigned w : kWorkerCounts) {
    rt::run(
        [&] {
          net::listener ln = net::listen("127.0.0.1:0");
          rt::wait_group server;
          server.add(1);
          std::string what;
          rt::go([&] {
            net::conn s = ln.accept();
            s.set_read_deadline(std::chrono::steady_clock::now() + 50ms);
            char header[16];
            try {
              s.read_full(header, sizeof header);
              ADD_FAILURE() << "read_full returned";
            } catch (const std::system_error& e) {
              EXPECT_EQ(e.code(), std::errc::timed_out);
              what = e.what();
            }
            // Later calls fail at once, until the deadline is moved.
            std::error_code ec;
            EXPECT_EQ(s.read(header, 1, ec), 0u);
            EXPECT_EQ(ec, std::errc::timed_out);
            server.done();
          });
          net::conn c = net::dial(ln.local_address());
          c.write_all("G");
          server.wait();
          // The server closed the conn: the client reads end of stream.
          char buf[4];
          EXPECT_EQ(c.read(buf, sizeof buf), 0u);
          EXPECT_EQ(what,
                    "rt::net::conn::read_full " + c.local_address().to_string() + ": i/o timeout");
        },
        with_workers(w));
  }
}

TEST_F(Net, ReadFullUnexpectedEof) {
  rt::run([] {
    net::listener ln = net::listen("127.0.0.1:0");
    net::conn c = net::dial(ln.local_address());
    net::conn s = ln.accept();
    c.write_all("abc");
    c.close();
    char buf[10];
    std::error_code ec;
    EXPECT_EQ(s.read_full(buf, sizeof buf, ec), 3u);
    EXPECT_EQ(ec, net::net_errc::unexpected_eof);
    EXPECT_EQ(std::string(buf, 3), "abc");
    // At end of stream already: 0 bytes, unexpected_eof again; the throwing form says so.
    const std::string what =
        rt_test::what_of<std::system_error>([&] { s.read_full(buf, sizeof buf); });
    EXPECT_NE(what.find("rt::net::conn::read_full 127.0.0.1:"), std::string::npos) << what;
    EXPECT_NE(what.find("unexpected EOF (0 of 10 bytes)"), std::string::npos) << what;
    EXPECT_EQ(s.read(buf, sizeof buf), 0u);
  });
}

// listener.close() from another fiber wakes a fiber parked in accept with net_errc::closed;
// conn.close() likewise wakes a fiber parked in read.
TEST_F(Net, CloseFromAnotherFiberWakesAcceptAndRead) {
  for (unsigned w : kWorkerCounts) {
    for (int round = 0; round < 20 / kSlow + 1; ++round) {
      rt::run(
          [&] {
            net::listener ln = net::listen("127.0.0.1:0");
            net::conn c = net::dial(ln.local_address());
            net::conn s = ln.accept();
            // Bounds, should close() not wake them: they fail with timed_out instead of hanging.
            ln.set_deadline(std::chrono::steady_clock::now() + 30s);
            s.set_read_deadline(std::chrono::steady_clock::now() + 30s);
            auto started = rt::make_chan<int>(2);
            rt::wait_group done;
            done.add(2);
            rt::go([&] {
              started.send(1);
              std::error_code ec;
              net::conn x = ln.accept(ec);
              EXPECT_EQ(ec, net::net_errc::closed);
              EXPECT_FALSE(x.is_open());
              done.done();
            });
            rt::go([&] {
              started.send(1);
              try {
                char buf[4];
                s.read(buf, sizeof buf);
                ADD_FAILURE() << "read returned";
              } catch (const std::system_error& e) {
                EXPECT_EQ(e.code(), net::net_errc::closed);
                EXPECT_NE(std::string(e.what()).find("use of closed network connection"),
                          std::string::npos);
              }
              done.done();
            });
            started.recv();
            started.recv();
            for (int i = 0; i < round; ++i) rt::yield();  // vary how far they got
            ln.close();
            s.close();
            done.wait();
          },
          with_workers(w));
    }
  }
}

// close() races reads and writes in flight, many connections at once, so descriptor numbers are
// reused while stale calls are still returning: every call ends with an expected error, no
// descriptor leaks (the fixture counts), nothing is used after free (ASan) or raced (TSan).
TEST_F(Net, CloseRacesReadsAndWrites) {
  const int pairs = static_cast<int>(rt_test::scaled(200, 40));
  for (unsigned w : kWorkerCounts) {
    std::atomic<int> unexpected{0};
    rt::run(
        [&] {
          net::listener ln = net::listen("127.0.0.1:0");
          rt::wait_group done;
          for (int i = 0; i < pairs; ++i) {
            auto c = std::make_shared<net::conn>(net::dial(ln.local_address()));
            auto s = std::make_shared<net::conn>(ln.accept());
            auto expected = [&](std::error_code ec) {
              if (!ec || ec == net::net_errc::closed || ec == std::errc::connection_reset ||
                  ec == std::errc::broken_pipe) {
                return;
              }
              unexpected.fetch_add(1);
              ADD_FAILURE() << ec.message();
            };
            done.add(3);
            rt::go([c, &done, expected] {  // writes until closed
              std::vector<char> chunk(16 * 1024, 'w');
              std::error_code ec;
              while (!ec) c->write_all(chunk.data(), chunk.size(), ec);
              expected(ec);
              done.done();
            });
            rt::go([s, &done, expected] {  // reads until closed or end of stream
              char buf[4096];
              std::error_code ec;
              while (s->read(buf, sizeof buf, ec) != 0 && !ec) {
              }
              expected(ec);
              done.done();
            });
            rt::go([c, s, i, &done] {  // closes both after a varying number of switches
              for (int k = 0; k < i % 7; ++k) rt::yield();
              if (i % 2) {
                c->close();
                s->close();
              } else {
                s->close();
                c->close();
              }
              done.done();
            });
          }
          done.wait();
        },
        with_workers(w));
    EXPECT_EQ(unexpected.load(), 0) << w << " workers";
  }
}

// Destroying a conn while another fiber is parked in read on it: the read wakes with `closed`
// and the state it still uses stays alive until it returns (ASan would see a use after free).
TEST_F(Net, DestroyWhileAnotherFiberReads) {
  for (unsigned w : kWorkerCounts) {
    rt::run(
        [&] {
          net::listener ln = net::listen("127.0.0.1:0");
          net::conn c = net::dial(ln.local_address());
          auto s = std::make_unique<net::conn>(ln.accept());
          s->set_read_deadline(std::chrono::steady_clock::now() + 30s);  // a bound
          rt::wait_group done;
          done.add(1);
          rt::go([&, sp = s.get()] {
            char buf[4];
            std::error_code ec;
            sp->read(buf, sizeof buf, ec);  // sp may be destroyed while we are in here
            EXPECT_EQ(ec, net::net_errc::closed);
            done.done();
          });
          // The call must have started (the object must outlive calls that start on it): wait
          // until the reader is parked on the descriptor.
          while (rt::stats().parked_by.io == 0) rt::yield();
          s.reset();
          done.wait();
        },
        with_workers(w));
  }
}

TEST_F(Net, DialClosedPortIsRefused) {
  rt::run([] {
    net::address at;
    {
      net::listener ln = net::listen("127.0.0.1:0");
      at = ln.local_address();
    }
    try {
      net::dial(at);
      ADD_FAILURE() << "dial succeeded";
    } catch (const std::system_error& e) {
      EXPECT_EQ(e.code(), std::errc::connection_refused);
      EXPECT_EQ(std::string(e.what()), "rt::net::dial " + at.to_string() + ": " +
                                           std::system_category().message(ECONNREFUSED));
    }
    std::error_code ec;
    net::conn c = net::dial(at.to_string(), ec);
    EXPECT_EQ(ec, std::errc::connection_refused);
    EXPECT_FALSE(c.is_open());
  });
}

// A listener whose accept queue is full drops further SYNs, so a dial to it hangs until its
// deadline: the dial gives timed_out ("i/o timeout").
TEST_F(Net, DialTimeout) {
  rt::run([] {
    net::listener ln = net::listen("127.0.0.1:0", 0);
    std::vector<net::conn> queued;
    bool timed_out = false;
    for (int i = 0; i < 16 && !timed_out; ++i) {
      std::error_code ec;
      net::conn c = net::dial(ln.local_address().to_string(), 100ms, ec);
      if (!ec) {
        queued.push_back(std::move(c));
        continue;
      }
      EXPECT_EQ(ec, std::errc::timed_out) << ec.message();
      timed_out = true;
      const std::string what = rt_test::what_of<std::system_error>(
          [&] { net::dial(ln.local_address(), std::chrono::steady_clock::now() + 50ms); });
      EXPECT_EQ(what, "rt::net::dial " + ln.local_address().to_string() + ": i/o timeout");
    }
    EXPECT_TRUE(timed_out) << "the full accept queue never dropped a SYN";
    // A deadline already passed fails at once.
    std::error_code ec;
    net::dial("127.0.0.1:9", -1s, ec);
    EXPECT_EQ(ec, std::errc::timed_out);
  });
}

TEST_F(Net, ErrorCodeOverloads) {
  rt::run([] {
    net::listener ln = net::listen("127.0.0.1:0");
    std::error_code ec;
    ln.set_deadline(std::chrono::steady_clock::now() + 10ms);
    net::conn none = ln.accept(ec);
    EXPECT_EQ(ec, std::errc::timed_out);
    EXPECT_FALSE(none);
    const std::string what = rt_test::what_of<std::system_error>([&] { ln.accept(); });
    EXPECT_EQ(what,
              "rt::net::listener::accept " + ln.local_address().to_string() + ": i/o timeout");
    ln.set_deadline(std::chrono::steady_clock::time_point::max());

    net::conn c = net::dial(ln.local_address());
    net::conn s = ln.accept(ec);
    ASSERT_FALSE(ec);
    char buf[4];
    c.set_read_deadline(std::chrono::steady_clock::now() - 1s);
    EXPECT_EQ(c.read(buf, sizeof buf, ec), 0u);
    EXPECT_EQ(ec, std::errc::timed_out);
    c.set_read_deadline(std::chrono::steady_clock::time_point::max());
    EXPECT_EQ(c.write_all("ok", 2, ec), 2u);
    EXPECT_FALSE(ec);
    EXPECT_EQ(s.read_full(buf, 2, ec), 2u);
    EXPECT_FALSE(ec);
    c.set_write_deadline(std::chrono::steady_clock::now() - 1s);
    EXPECT_EQ(c.write_all("ok", 2, ec), 0u);
    EXPECT_EQ(ec, std::errc::timed_out);
    c.close();
    EXPECT_EQ(c.read(buf, sizeof buf, ec), 0u);
    EXPECT_EQ(ec, net::net_errc::closed);
    EXPECT_EQ(c.write_all("x", 1, ec), 0u);
    EXPECT_EQ(ec, net::net_errc::closed);
    EXPECT_THROW(c.shutdown_write(), std::system_error);
    net::conn empty;
    EXPECT_EQ(empty.read(buf, 1, ec), 0u);
    EXPECT_EQ(ec, net::net_errc::closed);
    EXPECT_EQ(rt_test::what_of<std::system_error>([&] { empty.read(buf, 1); }),
              "rt::net::conn::read: use of closed network connection");
    EXPECT_EQ(ec.category().name(), std::string("rt::net"));
    ln.close();
    ln.accept(ec);
    EXPECT_EQ(ec, net::net_errc::closed);
    net::dial("not an address", ec);
    EXPECT_EQ(ec, std::errc::invalid_argument);
  });
}

TEST_F(Net, ListenErrorsNameTheAddress) {
  rt::run([] {
    net::listener ln = net::listen("127.0.0.1:0");
    ln.close();
    EXPECT_FALSE(ln.is_open());
    net::listener a = net::listen("127.0.0.1:0");
    // A second bind to a port in use (SO_REUSEADDR does not allow two listeners).
    const std::string what =
        rt_test::what_of<std::system_error>([&] { net::listen(a.local_address().to_string()); });
    EXPECT_EQ(what, "rt::net::listen " + a.local_address().to_string() + ": " +
                        std::system_category().message(EADDRINUSE));
    EXPECT_THROW(net::listen("nonsense"), std::invalid_argument);
  });
}

// Out of descriptors: accept throws a clear std::system_error, the listener stays usable, and
// once a descriptor is free the waiting connection is accepted. Runs in a child process, where
// RLIMIT_NOFILE is lowered and the table filled up.
void fd_exhaustion_child() {
  auto fail = [](const std::string& why) {
    std::fprintf(stderr, "FAIL: %s\n", why.c_str());
    std::fflush(stderr);
    std::_Exit(1);
  };
  rt::run([&] {
    net::listener ln = net::listen("127.0.0.1:0");
    net::conn c = net::dial(ln.local_address());  // waits in the backlog
    rlimit rl{};
    ::getrlimit(RLIMIT_NOFILE, &rl);
    rl.rlim_cur = static_cast<rlim_t>(fd_count() + 16);
    if (::setrlimit(RLIMIT_NOFILE, &rl) != 0) fail("setrlimit");
    // UBSan's vptr check may need a descriptor (a pipe, to probe memory) the first time it
    // sees an object's type: make the error-code calls of the failing accept once beforehand.
    {
      const std::error_code warm(EMFILE, std::system_category());
      if (warm != std::errc::too_many_files_open ||
          warm == std::errc::too_many_files_open_in_system || warm == std::errc::timed_out ||
          warm.message().empty()) {
        fail("error codes");
      }
      ln.set_deadline(std::chrono::steady_clock::now());
      try {
        ln.accept();
      } catch (const std::system_error& e) {
        if (e.code() == std::errc::too_many_files_open || std::string(e.what()).empty()) {
          fail("accept's timeout");
        }
      }
      ln.set_deadline(std::chrono::steady_clock::time_point::max());
    }
    std::vector<int> filler;
    for (;;) {
      int fd = ::dup(0);
      if (fd < 0) break;
      filler.push_back(fd);
    }
    if (filler.empty()) fail("could not fill the descriptor table");
    try {
      ln.accept();
      fail("accept succeeded with no descriptor free");
    } catch (const std::system_error& e) {
      if (e.code() != std::errc::too_many_files_open) fail(std::string("code: ") + e.what());
      const std::string w = e.what();
      if (w.find("rt::net::listener::accept " + ln.local_address().to_string()) ==
              std::string::npos ||
          w.find("out of file descriptors") == std::string::npos) {
        fail("message: " + w);
      }
    }
    if (!ln.is_open()) fail("the listener closed");
    ::close(filler.back());  // one descriptor free again
    filler.pop_back();
    net::conn s = ln.accept();
    c.write_all("still serving");
    char buf[13];
    s.read_full(buf, sizeof buf);
    if (std::string(buf, 13) != "still serving") fail("data");
    for (int fd : filler) ::close(fd);
  });
  std::fprintf(stderr, "fd exhaustion: ok\n");
  std::exit(0);
}

TEST_F(Net, AcceptOutOfDescriptorsFailsClearlyAndListenerStaysUsable) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_EXIT(fd_exhaustion_child(), ::testing::ExitedWithCode(0), "fd exhaustion: ok");
}

// rt::run returns while fibers are parked in accept and read (they are abandoned, as every
// leftover fiber is); nothing is closed behind the user's back. The listener and conns, which
// the test owns outside rt::run, close afterwards: the connections end at once (the peer reads
// end of stream, the listener refuses), but a descriptor with an abandoned call inside keeps its
// number, as any resource of an abandoned fiber stays (shutdown.cpp): the test closes those.
TEST_F(Net, ShutdownWithConnectionsOpen) {
  for (unsigned w : kWorkerCounts) {
    net::listener ln;
    net::conn c, s;
    const int r = rt::run(
        [&] {
          ln = net::listen("127.0.0.1:0");
          c = net::dial(ln.local_address());
          s = ln.accept();
          rt::wait_group started;
          started.add(2);
          rt::go([&] {
            started.done();
            ln.accept();
            ADD_FAILURE() << "accept returned";
          });
          rt::go([&] {
            started.done();
            char buf[1];
            s.read(buf, 1);
            ADD_FAILURE() << "server read returned";
          });
          started.wait();
          while (rt::stats().parked_by.io < 2) rt::yield();  // both are inside their calls
          return 7;
        },
        with_workers(w));
    EXPECT_EQ(r, 7);
    EXPECT_TRUE(c.is_open());  // nothing closed behind our back
    EXPECT_TRUE(s.is_open());
    EXPECT_TRUE(ln.is_open());
    const int kept[] = {s.native_handle(), ln.native_handle()};
    const net::address at = ln.local_address();
    s.close();
    ln.close();
    char buf[1];
    c.set_read_deadline(std::chrono::steady_clock::now() + 10s);  // a bound, should it not end
    EXPECT_EQ(c.read(buf, 1), 0u);  // from this plain thread: s's connection has ended
    c.close();
    std::error_code ec;
    net::dial(at.to_string(), ec);
    EXPECT_EQ(ec, std::errc::connection_refused);
    for (int fd : kept) {
      EXPECT_EQ(::close(fd), 0) << "descriptor " << fd << " was closed under an abandoned call";
    }
  }
}

// --- heavy -----------------------------------------------------------------------------------

// The client side of TenThousandIdleConnections, in a child process (its own descriptor table):
// n blocking connections, then one byte echoed on each, then close. System calls only (the
// parent has threads). Exits 0 on success; alarm() bounds it.
[[noreturn]] void idle_clients(const net::address& at, int n) {
  ::alarm(rt_test::kSanitized ? 600 : 120);
  rlimit rl{};
  ::getrlimit(RLIMIT_NOFILE, &rl);
  rl.rlim_cur = rl.rlim_max;
  ::setrlimit(RLIMIT_NOFILE, &rl);
  std::vector<int> fds(static_cast<std::size_t>(n), -1);
  for (int& fd : fds) {
    fd = ::socket(at.native()->sa_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0 || ::connect(fd, at.native(), at.native_size()) != 0) ::_exit(2);
  }
  for (int fd : fds) {
    char b = 'x';
    if (::send(fd, &b, 1, MSG_NOSIGNAL) != 1 || ::recv(fd, &b, 1, 0) != 1 || b != 'x') ::_exit(3);
  }
  for (int fd : fds) ::close(fd);
  ::_exit(0);
}

// 10,000 idle connections, each a fiber parked in read on the server (this process), the
// clients in a child process (so that each side's 10,000 descriptors fit the usual hard limit of
// 20,000); then one echo on every one of them, and all close.
TEST_F(NetHeavy, TenThousandIdleConnections) {
  const int n = static_cast<int>(rt_test::scaled(10000, 2000));
  rlimit rl{};
  ASSERT_EQ(::getrlimit(RLIMIT_NOFILE, &rl), 0);
  const rlim_t need = static_cast<rlim_t>(n + fd_count() + 64);
  if (rl.rlim_max != RLIM_INFINITY && rl.rlim_max < need) {
    GTEST_SKIP() << "RLIMIT_NOFILE hard limit " << rl.rlim_max << " < " << need;
  }
  const rlimit saved = rl;
  rl.rlim_cur = rl.rlim_max;
  ASSERT_EQ(::setrlimit(RLIMIT_NOFILE, &rl), 0);
  for (unsigned w : {1u, 4u}) {
    net::listener ln = net::listen("127.0.0.1:0");
    const pid_t child = ::fork();
    ASSERT_GE(child, 0);
    if (child == 0) idle_clients(ln.local_address(), n);
    std::atomic<int> echoed{0};
    rt::run(
        [&] {
          // Bounded: a child that died leaves accept to time out instead of hanging.
          ln.set_deadline(std::chrono::steady_clock::now() + (kSanitized ? 600s : 120s));
          rt::wait_group handlers;
          for (int i = 0; i < n; ++i) {
            net::conn c = ln.accept();
            handlers.add(1);
            rt::go([c = std::move(c), &handlers, &echoed]() mutable {
              char b;
              std::error_code ec;
              if (c.read(&b, 1, ec) == 1 && !ec) {
                c.write_all(&b, 1, ec);
                if (!ec) echoed.fetch_add(1);
                c.read(&b, 1, ec);  // end of stream
              }
              handlers.done();
            });
          }
          handlers.wait();
        },
        with_workers(w));
    int status = 0;
    ASSERT_EQ(::waitpid(child, &status, 0), child);
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "child status " << status;
    EXPECT_EQ(echoed.load(), n) << w << " workers";
  }
  ::setrlimit(RLIMIT_NOFILE, &saved);
}

}  // namespace
