// A blocking TCP client for the dev cluster server's tests (server_test.cc,
// server_pipeline_test.cc): sends bytes, receives whole messages.
//
//   tb::devcluster::testing::TcpClient tcp(server.ports()[0]);
//   tcp.Send(client.Register());
//   std::optional<std::vector<uint8_t>> reply = tcp.Receive();
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdint>
#include <optional>
#include <span>
#include <vector>

#include "client_core/constants.h"
#include "client_core/header.h"
#include "client_core/replica/testing/test_client.h"

namespace tb::devcluster::testing {

// A blocking TCP client. Reads have a generous timeout only so that a broken server fails the
// test instead of hanging it; no assertion depends on timing.
class TcpClient {
 public:
  explicit TcpClient(uint16_t port) {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_port = htons(port);
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    connected_ = ::connect(fd_, reinterpret_cast<sockaddr*>(&address), sizeof(address)) == 0;
    timeval timeout{.tv_sec = 30, .tv_usec = 0};
    ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof(timeout));
    int one = 1;
    ::setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  }
  ~TcpClient() { Close(); }
  void Close() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }
  bool connected() const { return connected_; }

  bool Send(std::span<const uint8_t> bytes) {
    size_t sent = 0;
    while (sent < bytes.size()) {
      const ssize_t n = ::send(fd_, bytes.data() + sent, bytes.size() - sent, MSG_NOSIGNAL);
      if (n <= 0) return false;
      sent += static_cast<size_t>(n);
    }
    return true;
  }

  // One whole message, or nullopt on EOF, reset or timeout.
  std::optional<std::vector<uint8_t>> Receive() {
    std::vector<uint8_t> message(kHeaderSize);
    if (!ReadExactly(message.data(), kHeaderSize)) return std::nullopt;
    const Header header = client_core::testing::ParseHeader(message);
    if (header.frame.size < kHeaderSize || header.frame.size > kMessageSizeMax) return std::nullopt;
    message.resize(header.frame.size);
    if (!ReadExactly(message.data() + kHeaderSize, header.frame.size - kHeaderSize)) {
      return std::nullopt;
    }
    return message;
  }

 private:
  bool ReadExactly(uint8_t* data, size_t size) {
    size_t done = 0;
    while (done < size) {
      const ssize_t n = ::recv(fd_, data + done, size - done, 0);
      if (n <= 0) return false;
      done += static_cast<size_t>(n);
    }
    return true;
  }

  int fd_ = -1;
  bool connected_ = false;
};

}  // namespace tb::devcluster::testing
