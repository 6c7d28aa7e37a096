// A TCP relay for SessionPool tests, between the pool's sessions and the dev cluster, that can
// silence one connection: what the session sends still reaches the cluster, but nothing comes
// back on that connection. It models one session stuck on a half-broken path while the cluster
// answers every other session.
//
//   Relay relay(cluster.addresses()[0].port);
//   options.replica_addresses = {{"127.0.0.1", relay.port()}};
//   relay.Silence(0);  // the first connection accepted (one per session with one replica)
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <vector>

#include <asio.hpp>

#include "pool/testing/recording.h"

namespace tb::pool::testing {

class Relay {
 public:
  explicit Relay(uint16_t target_port)
      : target_(asio::ip::make_address("127.0.0.1"), target_port),
        acceptor_(io_.io_context(), {asio::ip::make_address("127.0.0.1"), 0}) {
    io_.RunAndWait([this] { Accept(); });
  }
  ~Relay() {
    io_.RunAndWait([this] {
      acceptor_.close();
      for (const std::shared_ptr<Link>& link : links_) link->Close();
    });
    io_.Stop();
  }

  uint16_t port() const { return acceptor_.local_endpoint().port(); }

  // From now on, drops every byte the cluster sends on the `index`-th connection accepted.
  // Returns false if fewer connections were accepted.
  bool Silence(size_t index) {
    bool found = false;
    io_.RunAndWait([this, index, &found] {
      if (index >= links_.size()) return;
      links_[index]->silenced = true;
      found = true;
    });
    return found;
  }

  size_t connection_count() {
    size_t count = 0;
    io_.RunAndWait([this, &count] { count = links_.size(); });
    return count;
  }

 private:
  // One relayed connection: the session's socket and the cluster's.
  struct Link : std::enable_shared_from_this<Link> {
    explicit Link(asio::io_context& io_context) : session(io_context), cluster(io_context) {}
    void Close() {
      std::error_code ignored;
      session.close(ignored);
      cluster.close(ignored);
    }
    // Copies `from` to `to` until either side fails; drops the bytes while `drop` says so.
    void Pump(asio::ip::tcp::socket& from, asio::ip::tcp::socket& to,
              std::array<uint8_t, 64 * 1024>& buffer, bool toward_session) {
      from.async_read_some(asio::buffer(buffer), [self = shared_from_this(), &from, &to, &buffer,
                                                  toward_session](std::error_code error,
                                                                  size_t size) {
        if (error) return self->Close();
        if (toward_session && self->silenced) {
          return self->Pump(from, to, buffer, toward_session);
        }
        asio::async_write(to, asio::buffer(buffer.data(), size),
                          [self, &from, &to, &buffer, toward_session](std::error_code error,
                                                                     size_t) {
                            if (error) return self->Close();
                            self->Pump(from, to, buffer, toward_session);
                          });
      });
    }

    asio::ip::tcp::socket session;
    asio::ip::tcp::socket cluster;
    std::array<uint8_t, 64 * 1024> upstream{};
    std::array<uint8_t, 64 * 1024> downstream{};
    bool silenced = false;
  };

  void Accept() {
    auto link = std::make_shared<Link>(io_.io_context());
    acceptor_.async_accept(link->session, [this, link](std::error_code error) {
      if (error) return;
      std::error_code connect_error;
      link->cluster.connect(target_, connect_error);  // Loopback: immediate.
      if (connect_error) {
        link->Close();
      } else {
        link->Pump(link->session, link->cluster, link->upstream, false);
        link->Pump(link->cluster, link->session, link->downstream, true);
      }
      links_.push_back(link);
      Accept();
    });
  }

  IoThread io_;
  const asio::ip::tcp::endpoint target_;
  asio::ip::tcp::acceptor acceptor_;
  std::vector<std::shared_ptr<Link>> links_;  // Every connection accepted, in order.
};

}  // namespace tb::pool::testing
