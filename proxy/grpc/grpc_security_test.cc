// Token permissions through the service, and TLS / mutual TLS with certificates made by the
// openssl command line tool for each test run.
#include <cstdlib>
#include <fstream>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "proxy/grpc/grpc_auth.h"
#include "proxy/testing/grpc_message_util.h"
#include "proxy/testing/grpc_test_server.h"

namespace tb::proxy {
namespace {

namespace v1 = ::tbproxy::v1;
using testing::TestServer;

// sha256("writer-token") and sha256("reader-token").
std::string Sha256Hex(const std::string& text) {
  const std::string command =
      absl::StrCat("printf '%s' '", text, "' | sha256sum | cut -c1-64");
  FILE* pipe = popen(command.c_str(), "r");
  char buffer[65] = {};
  EXPECT_NE(pipe, nullptr);
  EXPECT_EQ(fread(buffer, 1, 64, pipe), 64u);
  pclose(pipe);
  return std::string(buffer, 64);
}

class GrpcTokenTest : public ::testing::Test {
 protected:
  static TokenAuthenticator MakeTokens() {
    auto tokens = TokenAuthenticator::Parse(
        absl::StrCat("writer:write:sha256:", Sha256Hex("writer-token"), "\n",
                     "reader:read:sha256:", Sha256Hex("reader-token"), "\n"));
    TB_ASSERT(tokens.ok());
    return *std::move(tokens);
  }

  GrpcTokenTest() : tokens_(MakeTokens()), server_({.authenticator = &tokens_}) {
    server_.submitter.set_answer([](const SubmitRequest& request) {
      SubmitResult result{.timestamp = 1};
      result.results.resize(request.operation == 146 ? request.events.size() / 8 : 0);
      return absl::StatusOr<SubmitResult>(result);
    });
    stub_ = server_.NewStub();
  }

  grpc::StatusCode CreateAccounts(const char* token) {
    grpc::ClientContext context;
    if (token != nullptr) context.AddMetadata("authorization", absl::StrCat("Bearer ", token));
    v1::CreateAccountsRequest request;
    request.add_accounts()->mutable_id()->set_lo(1);
    v1::CreateAccountsResponse response;
    return stub_->CreateAccounts(&context, request, &response).error_code();
  }

  grpc::StatusCode Raw(const char* token, uint32_t operation, size_t size) {
    grpc::ClientContext context;
    if (token != nullptr) context.AddMetadata("authorization", absl::StrCat("Bearer ", token));
    v1::RawRequest request;
    request.set_operation(operation);
    request.set_events(std::string(size, '\0'));
    v1::RawResponse response;
    return stub_->Raw(&context, request, &response).error_code();
  }

  TokenAuthenticator tokens_;
  TestServer server_;
  std::unique_ptr<v1::TigerBeetle::Stub> stub_;
};

TEST_F(GrpcTokenTest, CallsNeedAKnownToken) {
  EXPECT_EQ(CreateAccounts(nullptr), grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_EQ(CreateAccounts("guess"), grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_EQ(CreateAccounts("writer-token"), grpc::StatusCode::OK);
  EXPECT_EQ(server_.submitter.calls().size(), 1u);
  const auto refusals = server_.submitter.refusals();
  ASSERT_EQ(refusals.size(), 2u);
  for (const auto& refusal : refusals) {
    EXPECT_EQ(refusal.operation, 146);
    EXPECT_EQ(refusal.code, absl::StatusCode::kUnauthenticated);
  }
}

TEST_F(GrpcTokenTest, ReadOnlyTokensCannotCreate) {
  EXPECT_EQ(CreateAccounts("reader-token"), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_EQ(Raw("reader-token", 146, 128), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_EQ(Raw("reader-token", 147, 128), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_TRUE(server_.submitter.calls().empty());
  EXPECT_EQ(Raw("reader-token", 140, 16), grpc::StatusCode::OK);
  EXPECT_EQ(Raw("writer-token", 146, 128), grpc::StatusCode::OK);
}

TEST_F(GrpcTokenTest, StreamsNeedATokenAndReadOnlyStreamsCannotCreate) {
  {
    grpc::ClientContext context;
    auto stream = stub_->Stream(&context);
    v1::StreamResponse response;
    EXPECT_FALSE(stream->Read(&response));
    EXPECT_EQ(stream->Finish().error_code(), grpc::StatusCode::UNAUTHENTICATED);
  }
  grpc::ClientContext context;
  context.AddMetadata("authorization", "Bearer reader-token");
  auto stream = stub_->Stream(&context);
  v1::StreamRequest create;
  create.set_correlation_id(1);
  create.mutable_create_accounts()->add_accounts()->mutable_id()->set_lo(1);
  v1::StreamRequest raw_create;
  raw_create.set_correlation_id(2);
  raw_create.mutable_raw()->set_operation(147);
  raw_create.mutable_raw()->set_events(std::string(128, '\0'));
  v1::StreamRequest lookup;
  lookup.set_correlation_id(3);
  lookup.mutable_lookup_accounts()->add_ids()->set_lo(1);
  ASSERT_TRUE(stream->Write(create));
  ASSERT_TRUE(stream->Write(raw_create));
  ASSERT_TRUE(stream->Write(lookup));
  ASSERT_TRUE(stream->WritesDone());
  std::map<uint64_t, v1::StreamResponse> responses = testing::ReadResponses(stream.get());
  EXPECT_TRUE(stream->Finish().ok());
  ASSERT_EQ(responses.size(), 3u);
  EXPECT_EQ(responses[1].error().code(), static_cast<int>(grpc::StatusCode::PERMISSION_DENIED));
  EXPECT_EQ(responses[2].error().code(), static_cast<int>(grpc::StatusCode::PERMISSION_DENIED));
  // The two refused calls of the stream reach the per-call metrics; the stream itself is not a
  // call (nor is the unauthenticated stream above).
  const auto refusals = server_.submitter.refusals();
  ASSERT_EQ(refusals.size(), 2u);
  EXPECT_EQ(refusals[0].operation, 146);
  EXPECT_EQ(refusals[1].operation, 147);
  for (const auto& refusal : refusals) {
    EXPECT_EQ(refusal.code, absl::StatusCode::kPermissionDenied);
  }
  EXPECT_TRUE(responses[3].has_lookup_accounts());
  EXPECT_EQ(server_.submitter.calls().size(), 1u);
}

// ---- TLS -------------------------------------------------------------------------------------

std::string ReadFile(const std::string& path) {
  std::ifstream file(path);
  std::stringstream text;
  text << file.rdbuf();
  return text.str();
}

// A CA, a server certificate for 127.0.0.1/localhost, a client certificate from the same CA,
// and a client certificate from another CA.
class Certificates {
 public:
  Certificates() {
    directory_ = absl::StrCat(::testing::TempDir(), "/tbproxy_tls_", getpid());
    const std::string script = absl::StrCat(
        "set -e; rm -rf ", directory_, "; mkdir -p ", directory_, "; cd ", directory_, "\n",
        "key() { openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out $1 "
        "2>/dev/null; }\n",
        "ca() { key $1.key; openssl req -x509 -new -key $1.key -out $1.pem -days 2 "
        "-subj /CN=$1 2>/dev/null; }\n",
        "leaf() { key $1.key; openssl req -new -key $1.key -out $1.csr -subj /CN=$1 "
        "2>/dev/null; printf '%s\\n' \"$3\" > $1.ext; openssl x509 -req -in $1.csr -CA $2.pem "
        "-CAkey $2.key -CAcreateserial -out $1.pem -days 2 -extfile $1.ext 2>/dev/null; }\n",
        "ca ca; ca other_ca\n",
        "leaf server ca 'subjectAltName=DNS:localhost,IP:127.0.0.1'\n",
        "leaf client ca 'extendedKeyUsage=clientAuth'\n",
        "leaf stranger other_ca 'extendedKeyUsage=clientAuth'\n");
    ok_ = std::system(script.c_str()) == 0;
  }
  ~Certificates() { std::system(absl::StrCat("rm -rf ", directory_).c_str()); }

  bool ok() const { return ok_; }
  std::string Path(const std::string& name) const { return absl::StrCat(directory_, "/", name); }
  std::string Pem(const std::string& name) const { return ReadFile(Path(name)); }
  // The test server's options, serving TLS with server.pem and server.key.
  GrpcServerOptions TlsServerOptions() const {
    GrpcServerOptions options = TestServer::DefaultServerOptions();
    options.tls.certificate_file = Path("server.pem");
    options.tls.private_key_file = Path("server.key");
    return options;
  }

 private:
  std::string directory_;
  bool ok_ = false;
};

grpc::StatusCode QueryThrough(const TestServer& server,
                              std::shared_ptr<grpc::ChannelCredentials> credentials) {
  auto stub = server.NewStub(std::move(credentials));
  grpc::ClientContext context;
  // Only a bound on a failed handshake's retries; never the thing under test.
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(20));
  v1::QueryAccountsRequest request;
  request.mutable_filter()->set_limit(1);
  v1::QueryAccountsResponse response;
  return stub->QueryAccounts(&context, request, &response).error_code();
}

TEST(GrpcTls, ServesTlsAndRefusesPlaintext) {
  Certificates certificates;
  ASSERT_TRUE(certificates.ok());
  GrpcServerOptions options = certificates.TlsServerOptions();
  TestServer server({}, options);
  grpc::SslCredentialsOptions ssl{.pem_root_certs = certificates.Pem("ca.pem")};
  EXPECT_EQ(QueryThrough(server, grpc::SslCredentials(ssl)), grpc::StatusCode::OK);
  EXPECT_EQ(QueryThrough(server, grpc::InsecureChannelCredentials()),
            grpc::StatusCode::UNAVAILABLE);
  grpc::SslCredentialsOptions wrong_ca{.pem_root_certs = certificates.Pem("other_ca.pem")};
  EXPECT_EQ(QueryThrough(server, grpc::SslCredentials(wrong_ca)),
            grpc::StatusCode::UNAVAILABLE);
  EXPECT_EQ(server.submitter.calls().size(), 1u);
}

TEST(GrpcTls, MutualTlsNeedsAClientCertificateFromTheCa) {
  Certificates certificates;
  ASSERT_TRUE(certificates.ok());
  GrpcServerOptions options = certificates.TlsServerOptions();
  options.tls.client_ca_file = certificates.Path("ca.pem");
  TestServer server({}, options);
  const std::string ca = certificates.Pem("ca.pem");
  EXPECT_EQ(QueryThrough(server, grpc::SslCredentials({.pem_root_certs = ca})),
            grpc::StatusCode::UNAVAILABLE);
  EXPECT_EQ(QueryThrough(server, grpc::SslCredentials({
                                     .pem_root_certs = ca,
                                     .pem_private_key = certificates.Pem("stranger.key"),
                                     .pem_cert_chain = certificates.Pem("stranger.pem"),
                                 })),
            grpc::StatusCode::UNAVAILABLE);
  EXPECT_EQ(QueryThrough(server, grpc::SslCredentials({
                                     .pem_root_certs = ca,
                                     .pem_private_key = certificates.Pem("client.key"),
                                     .pem_cert_chain = certificates.Pem("client.pem"),
                                 })),
            grpc::StatusCode::OK);
  EXPECT_EQ(server.submitter.calls().size(), 1u);
}

TEST(GrpcTls, UnreadableFilesAreErrorsNamingTheSetting) {
  GrpcServerOptions options = TestServer::DefaultServerOptions();
  options.tls.certificate_file = "/nonexistent/server.pem";
  options.tls.private_key_file = "/nonexistent/server.key";
  testing::FakeSubmitter submitter;
  GrpcService service(submitter, {});
  auto server = GrpcServer::Start(options, &service);
  EXPECT_EQ(server.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(server.status().message(), ::testing::HasSubstr("tls-cert-file"));
}

}  // namespace
}  // namespace tb::proxy
