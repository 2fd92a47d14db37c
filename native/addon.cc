// addon.cc: the glue between JavaScript and the platform backend.
//
// It owns the per-environment state (the backend, one thread-safe function
// and the event queue behind it) and one wrapped Connection object per
// connection. Backend threads push events into the queue; the JavaScript
// thread drains it in batches and calls each connection's event callback.
// Nothing here depends on the platform: backend.h is the whole interface.

// While a worker is terminated, Node-API calls fail with a pending
// exception but none can be thrown. Without this, node-addon-api throws a
// C++ exception out of a method's exception handler, and the process ends in
// std::terminate. With it, the method returns and the worker ends.
#define NODE_API_SWALLOW_UNTHROWABLE_EXCEPTIONS

#include <arpa/inet.h>
#include <dlfcn.h>
#include <napi.h>
#include <netinet/in.h>
#include <uv.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <string>
#include <unordered_set>
#include <vector>

#include "backend.h"

namespace {

static_assert(MP_EAI_AGAIN == UV_EAI_AGAIN, "MP_EAI_AGAIN must match libuv");
static_assert(MP_EAI_FAIL == UV_EAI_FAIL, "MP_EAI_FAIL must match libuv");
static_assert(MP_EAI_NONAME == UV_EAI_NONAME, "MP_EAI_NONAME must match libuv");

// Maximum bytes of received data waiting in the queue for one connection.
// Past it the backend stops reading until JavaScript catches up, so a busy
// JavaScript thread cannot make the queue grow without bound.
constexpr size_t kMaxQueuedBytes = 1024 * 1024;

class Connection;

struct QueuedEvent {
  Connection *connection;
  mp_event_type_t type;
  mp_error_t error;
  void *data;
  size_t len;
  void *req;
};

// A write whose completion comes later: it keeps the written buffers alive
// until the backend's WRITE event.
struct WriteRequest {
  Napi::Reference<Napi::Value> keep;
  std::vector<mp_buf_t> bufs;
};

// Per-environment state. Each Node environment (the main thread and every
// worker) loads the addon separately and gets its own backend and queue.
class EnvData {
public:
  explicit EnvData(napi_env env) : env_(env) {}
  ~EnvData() {
    Teardown();
  }

  // Creates the backend and the thread-safe function on first use. Returns
  // 0 or a negative error.
  int Start();

  // Pushes an event from a backend thread and wakes the JavaScript thread
  // when the queue was empty. During teardown the event stays queued until
  // Teardown discards it.
  void Push(const QueuedEvent &event);

  void AddLive(Connection *connection) {
    live_.insert(connection);
  }
  void RemoveLive(Connection *connection) {
    live_.erase(connection);
  }

  // Counts connections that keep the event loop alive.
  void Ref();
  void Unref();

  mp_backend_t *backend() const {
    return backend_;
  }
  std::mutex &mutex() {
    return mutex_;
  }

  static void CleanupHook(void *arg) {
    auto *self = static_cast<EnvData *>(arg);
    self->hook_ran_ = true;
    self->Teardown();
  }

private:
  static void CallJs(napi_env env, napi_value, void *context, void *);
  void Drain(napi_env env);
  void Teardown();
  void DiscardQueue();

  napi_env env_;
  mp_backend_t *backend_ = nullptr;
  napi_threadsafe_function tsfn_ = nullptr;
  std::mutex mutex_;
  std::vector<QueuedEvent> queue_;
  bool scheduled_ = false;
  bool closing_ = false;
  bool started_ = false;
  bool torn_down_ = false;
  bool hook_ran_ = false;
  int refs_ = 0;
  std::unordered_set<Connection *> live_;
};

// The JavaScript-visible handle of one connection. It holds a strong
// reference to itself from connect() until its CLOSE event, so that an open
// connection is never collected, as with a net.Socket.
class Connection : public Napi::ObjectWrap<Connection> {
public:
  static Napi::Function Define(Napi::Env env);

  explicit Connection(const Napi::CallbackInfo &info);

  // Calls the event callback with raw Node-API calls. Returns napi_ok, or
  // the first failed status, with a listener's exception left pending.
  napi_status Dispatch(napi_env env, QueuedEvent &event);
  // Releases what the event carries without calling JavaScript; used once
  // the environment is being torn down.
  void Discard(QueuedEvent &event);
  // Forgets the native connection at teardown, after its CLOSE.
  void Detach();

  static void Emit(void *ctx, mp_event_t *event);

private:
  Napi::Value Connect(const Napi::CallbackInfo &info);
  Napi::Value ReadStart(const Napi::CallbackInfo &info);
  Napi::Value ReadStop(const Napi::CallbackInfo &info);
  Napi::Value Write(const Napi::CallbackInfo &info);
  Napi::Value Shutdown(const Napi::CallbackInfo &info);
  Napi::Value Close(const Napi::CallbackInfo &info);
  Napi::Value GetInfo(const Napi::CallbackInfo &info);
  Napi::Value GetPaths(const Napi::CallbackInfo &info);
  Napi::Value SetNoDelay(const Napi::CallbackInfo &info);
  Napi::Value SetKeepAlive(const Napi::CallbackInfo &info);
  Napi::Value RefMethod(const Napi::CallbackInfo &info);
  Napi::Value UnrefMethod(const Napi::CallbackInfo &info);

  void UpdateRead();
  void UpdateRef();

  EnvData *env_data_;
  Napi::FunctionReference callback_;
  mp_conn_t *conn_ = nullptr;
  bool open_ = false;
  bool closing_ = false;
  bool refed_ = true;
  // Writes and shutdowns whose completion event is still to come, and
  // whether this connection counts in the environment's references.
  int pending_ = 0;
  bool holding_ref_ = false;

  // Read flow, guarded by env_data_->mutex(): JavaScript's wish to read,
  // the bytes queued and not yet delivered, and whether the queue limit
  // has paused the backend.
  bool js_reading_ = false;
  size_t queued_bytes_ = 0;
  bool limited_ = false;
};

enum JsEvent {
  kEventConnect = MP_EVENT_CONNECT,
  kEventData = MP_EVENT_DATA,
  kEventEof = MP_EVENT_EOF,
  kEventWrite = MP_EVENT_WRITE,
  kEventShutdown = MP_EVENT_SHUTDOWN,
  kEventError = MP_EVENT_ERROR,
  kEventWaiting = MP_EVENT_WAITING,
  kEventPath = MP_EVENT_PATH,
  kEventClose = MP_EVENT_CLOSE,
};

// ---------------------------------------------------------------------------
// Addresses

std::string FormatAddress(const struct sockaddr_storage &address, int *port,
                          int *family) {
  char text[INET6_ADDRSTRLEN] = "";

  if (address.ss_family == AF_INET6) {
    auto *v6 = reinterpret_cast<const struct sockaddr_in6 *>(&address);
    inet_ntop(AF_INET6, &v6->sin6_addr, text, sizeof(text));
    *port = ntohs(v6->sin6_port);
    *family = 6;
  } else {
    auto *v4 = reinterpret_cast<const struct sockaddr_in *>(&address);
    inet_ntop(AF_INET, &v4->sin_addr, text, sizeof(text));
    *port = ntohs(v4->sin_port);
    *family = 4;
  }
  return text;
}

bool ParseAddress(const std::string &text, uint16_t port,
                  struct sockaddr_storage *out) {
  std::memset(out, 0, sizeof(*out));
  auto *v4 = reinterpret_cast<struct sockaddr_in *>(out);
  auto *v6 = reinterpret_cast<struct sockaddr_in6 *>(out);

  if (inet_pton(AF_INET, text.c_str(), &v4->sin_addr) == 1) {
    v4->sin_family = AF_INET;
    v4->sin_port = htons(port);
    return true;
  }
  if (inet_pton(AF_INET6, text.c_str(), &v6->sin6_addr) == 1) {
    v6->sin6_family = AF_INET6;
    v6->sin6_port = htons(port);
    return true;
  }
  return false;
}

mp_buf_t BufferOf(Napi::TypedArray array) {
  auto *base = static_cast<const char *>(array.ArrayBuffer().Data());
  return {base + array.ByteOffset(), array.ByteLength()};
}

// Sets <prefix>Address, <prefix>Port and <prefix>Family on target, or
// address, port and family when prefix is empty.
void SetAddress(Napi::Object target, const std::string &prefix,
                const struct sockaddr_storage &address) {
  int port = 0;
  int family = 0;
  std::string text = FormatAddress(address, &port, &family);
  Napi::Env env = target.Env();
  bool bare = prefix.empty();

  target.Set(bare ? "address" : prefix + "Address",
             Napi::String::New(env, text));
  target.Set(bare ? "port" : prefix + "Port", Napi::Number::New(env, port));
  target.Set(bare ? "family" : prefix + "Family",
             Napi::String::New(env, family == 6 ? "IPv6" : "IPv4"));
}

napi_status MakeReportValue(napi_env env, const mp_path_report_t *report,
                            napi_value *result);

// ---------------------------------------------------------------------------
// EnvData

int EnvData::Start() {
  if (started_)
    return 0;
  if (torn_down_)
    return -ECANCELED;

  napi_status status = napi_create_threadsafe_function(
      env_, nullptr, nullptr,
      Napi::String::New(env_, "nw-mptcp").operator napi_value(), 0, 1, nullptr,
      nullptr, this, CallJs, &tsfn_);
  if (status != napi_ok)
    return -ENOMEM;
  napi_unref_threadsafe_function(env_, tsfn_);

  int r = mp_backend_create(&backend_);
  if (r != 0) {
    napi_release_threadsafe_function(tsfn_, napi_tsfn_abort);
    tsfn_ = nullptr;
    return r;
  }

  // Registered after the thread-safe function, so this hook runs before
  // Node's own cleanup of that function: backend threads may still call it
  // until the backend is destroyed.
  napi_add_env_cleanup_hook(env_, CleanupHook, this);
  started_ = true;
  return 0;
}

void EnvData::Push(const QueuedEvent &event) {
  bool wake = false;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    queue_.push_back(event);
    if (!closing_ && !scheduled_) {
      scheduled_ = true;
      wake = true;
    }
  }
  if (wake)
    napi_call_threadsafe_function(tsfn_, nullptr, napi_tsfn_nonblocking);
}

void EnvData::Ref() {
  if (refs_++ == 0 && tsfn_ != nullptr)
    napi_ref_threadsafe_function(env_, tsfn_);
}

void EnvData::Unref() {
  if (--refs_ == 0 && tsfn_ != nullptr)
    napi_unref_threadsafe_function(env_, tsfn_);
}

void EnvData::CallJs(napi_env env, napi_value, void *context, void *) {
  // A null env means the function is being torn down with this call still
  // queued; Teardown discards the events.
  if (env == nullptr)
    return;
  static_cast<EnvData *>(context)->Drain(env);
}

void EnvData::Drain(napi_env env) {
  std::vector<QueuedEvent> batch;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    batch.swap(queue_);
    scheduled_ = false;
  }

  // Raw Node-API calls with checked statuses: node-addon-api turns a
  // failed call into a fatal error while the environment is stopping, and
  // Node may still run this function then.
  napi_handle_scope scope;
  size_t done = 0;
  bool rescheduled = false;
  if (napi_open_handle_scope(env, &scope) == napi_ok) {
    for (; done < batch.size(); done++) {
      if (batch[done].connection->Dispatch(env, batch[done]) == napi_ok)
        continue;
      // A pending exception means a listener threw, as from a net.Socket:
      // it reaches the process as an uncaught exception, and the rest of
      // the batch runs on the next turn. Otherwise JavaScript cannot run
      // any more, and Teardown discards what is left.
      bool pending = false;
      napi_is_exception_pending(env, &pending);
      if (pending) {
        // Left pending, Node-API (NAPI_VERSION 8) would only print the
        // DEP0168 warning and drop the exception, so the process would go
        // on after a listener failed. napi_fatal_exception raises it as
        // Node does for its own callbacks: 'uncaughtException', or exit 1.
        napi_value exception;
        if (napi_get_and_clear_last_exception(env, &exception) == napi_ok)
          napi_fatal_exception(env, exception);
      }
      rescheduled = pending;
      done++;
      break;
    }
    napi_close_handle_scope(env, scope);
  }
  if (done == batch.size())
    return;

  std::lock_guard<std::mutex> lock(mutex_);
  queue_.insert(queue_.begin(), batch.begin() + done, batch.end());
  if (rescheduled && !scheduled_ && !closing_) {
    scheduled_ = true;
    napi_call_threadsafe_function(tsfn_, nullptr, napi_tsfn_nonblocking);
  }
}

void EnvData::DiscardQueue() {
  std::vector<QueuedEvent> batch;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    batch.swap(queue_);
  }
  for (QueuedEvent &event : batch)
    event.connection->Discard(event);
}

void EnvData::Teardown() {
  if (torn_down_)
    return;
  torn_down_ = true;
  if (!started_)
    return;
  if (!hook_ran_)
    napi_remove_env_cleanup_hook(env_, CleanupHook, this);

  {
    std::lock_guard<std::mutex> lock(mutex_);
    closing_ = true;
  }
  // Closes every connection and waits for the backend threads; their last
  // events land in the queue, which is then emptied without JavaScript.
  mp_backend_destroy(backend_);
  backend_ = nullptr;
  DiscardQueue();
  for (Connection *connection :
       std::vector<Connection *>(live_.begin(), live_.end()))
    connection->Detach();
  live_.clear();

  napi_release_threadsafe_function(tsfn_, napi_tsfn_abort);
  tsfn_ = nullptr;
}

// ---------------------------------------------------------------------------
// Connection

Napi::Function Connection::Define(Napi::Env env) {
  return DefineClass(
      env, "Connection",
      {
          InstanceMethod<&Connection::Connect>("connect"),
          InstanceMethod<&Connection::ReadStart>("readStart"),
          InstanceMethod<&Connection::ReadStop>("readStop"),
          InstanceMethod<&Connection::Write>("write"),
          InstanceMethod<&Connection::Shutdown>("shutdown"),
          InstanceMethod<&Connection::Close>("close"),
          InstanceMethod<&Connection::GetInfo>("getInfo"),
          InstanceMethod<&Connection::GetPaths>("getPaths"),
          InstanceMethod<&Connection::SetNoDelay>("setNoDelay"),
          InstanceMethod<&Connection::SetKeepAlive>("setKeepAlive"),
          InstanceMethod<&Connection::RefMethod>("ref"),
          InstanceMethod<&Connection::UnrefMethod>("unref"),
      });
}

Connection::Connection(const Napi::CallbackInfo &info)
    : Napi::ObjectWrap<Connection>(info) {
  Napi::Env env = info.Env();

  if (!info.IsConstructCall())
    throw Napi::TypeError::New(env, "Connection must be called with new");
  if (info.Length() < 1 || !info[0].IsFunction())
    throw Napi::TypeError::New(env, "The event callback must be a function");
  env_data_ = env.GetInstanceData<EnvData>();

  // The callback is stored on the object so that it lives exactly as long
  // as the object; the native reference to it stays weak.
  info.This().As<Napi::Object>().Set("onevent", info[0]);
  callback_ = Napi::Weak(info[0].As<Napi::Function>());
}

void Connection::Emit(void *ctx, mp_event_t *event) {
  auto *self = static_cast<Connection *>(ctx);
  QueuedEvent queued = {self,        event->type, event->error,
                        event->data, event->len,  event->req};

  if (event->type == MP_EVENT_DATA) {
    std::lock_guard<std::mutex> lock(self->env_data_->mutex());
    self->queued_bytes_ += event->len;
    if (self->queued_bytes_ >= kMaxQueuedBytes && !self->limited_) {
      self->limited_ = true;
      mp_conn_read_stop(self->conn_);
    }
  }
  self->env_data_->Push(queued);
}

Napi::Value Connection::Connect(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();

  if (conn_ != nullptr || open_)
    throw Napi::Error::New(env, "The connection was already started");
  if (info.Length() < 1 || !info[0].IsObject())
    throw Napi::TypeError::New(env, "The connect options must be an object");
  Napi::Object options = info[0].As<Napi::Object>();

  mp_connect_options_t native;
  std::memset(&native, 0, sizeof(native));
  std::string host = options.Get("host").ToString();
  native.host = host.c_str();
  native.port =
      static_cast<uint16_t>(options.Get("port").ToNumber().Uint32Value());
  native.service =
      static_cast<mp_service_t>(options.Get("service").ToNumber().Int32Value());
  native.family = options.Get("family").ToNumber().Int32Value();
  native.no_delay = options.Get("noDelay").ToBoolean();
  native.keep_alive = options.Get("keepAlive").ToBoolean();
  native.keep_alive_delay =
      options.Get("keepAliveDelay").ToNumber().Uint32Value();
  native.wait_for_connectivity = options.Get("waitForConnectivity").ToBoolean();

  // Platform TLS: the strings live until mp_conn_open returns.
  std::string tls_server_name;
  std::vector<std::string> alpn;
  std::vector<const char *> alpn_pointers;
  native.tls = options.Get("tls").ToBoolean();
  if (native.tls) {
    Napi::Value name = options.Get("tlsServerName");
    if (name.IsString()) {
      tls_server_name = name.As<Napi::String>().Utf8Value();
      native.tls_server_name = tls_server_name.c_str();
    }
    Napi::Value protocols = options.Get("tlsAlpn");
    if (protocols.IsArray()) {
      Napi::Array array = protocols.As<Napi::Array>();
      for (uint32_t i = 0; i < array.Length(); i++)
        alpn.push_back(array.Get(i).ToString().Utf8Value());
    }
    for (const std::string &protocol : alpn)
      alpn_pointers.push_back(protocol.c_str());
    native.tls_alpn = alpn_pointers.data();
    native.tls_alpn_count = alpn_pointers.size();
    native.tls_min_version =
        options.Get("tlsMinVersion").ToNumber().Int32Value();
  }

  std::string local_address;
  Napi::Value local = options.Get("localAddress");
  if (local.IsString()) {
    local_address = local.As<Napi::String>().Utf8Value();
    native.local_address = local_address.c_str();
  }
  native.local_port =
      static_cast<uint16_t>(options.Get("localPort").ToNumber().Uint32Value());

  std::vector<struct sockaddr_storage> addresses;
  Napi::Value list = options.Get("addresses");
  if (list.IsArray()) {
    Napi::Array array = list.As<Napi::Array>();
    for (uint32_t i = 0; i < array.Length(); i++) {
      struct sockaddr_storage address;
      std::string text = array.Get(i).ToString();
      if (!ParseAddress(text, native.port, &address))
        throw Napi::TypeError::New(env, "Invalid address: " + text);
      addresses.push_back(address);
    }
  }
  native.addresses = addresses.data();
  native.address_count = addresses.size();

  int r = env_data_->Start();
  if (r != 0)
    return Napi::Number::New(env, r);
  r = mp_conn_open(env_data_->backend(), &native, Emit, this, &conn_);
  if (r != 0) {
    conn_ = nullptr;
    return Napi::Number::New(env, r);
  }

  open_ = true;
  Ref();
  env_data_->AddLive(this);
  UpdateRef();
  return Napi::Number::New(env, 0);
}

// Keeps the event loop alive while the connection is referenced, and after
// unref() too while a write, a shutdown or the close is under way, as libuv
// does for a net.Socket's requests and closing handles.
void Connection::UpdateRef() {
  bool hold = open_ && (refed_ || closing_ || pending_ > 0);
  if (hold == holding_ref_)
    return;
  holding_ref_ = hold;
  if (hold)
    env_data_->Ref();
  else
    env_data_->Unref();
}

void Connection::UpdateRead() {
  // Called with the environment's mutex held.
  if (conn_ == nullptr || closing_)
    return;
  if (js_reading_ && !limited_)
    mp_conn_read_start(conn_);
  else
    mp_conn_read_stop(conn_);
}

Napi::Value Connection::ReadStart(const Napi::CallbackInfo &info) {
  std::lock_guard<std::mutex> lock(env_data_->mutex());
  js_reading_ = true;
  UpdateRead();
  return info.Env().Undefined();
}

Napi::Value Connection::ReadStop(const Napi::CallbackInfo &info) {
  std::lock_guard<std::mutex> lock(env_data_->mutex());
  js_reading_ = false;
  UpdateRead();
  return info.Env().Undefined();
}

// write(chunk) or write([chunk, ...]): returns MP_DONE (1) when the stack
// took everything, 0 when a WRITE event follows, or a negative error.
Napi::Value Connection::Write(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();

  if (conn_ == nullptr || closing_)
    return Napi::Number::New(env, -EBADF);
  if (info.Length() < 1)
    throw Napi::TypeError::New(env, "write needs a buffer");

  auto *request = new WriteRequest();
  Napi::Value chunks = info[0];
  if (chunks.IsArray()) {
    Napi::Array array = chunks.As<Napi::Array>();
    request->bufs.reserve(array.Length());
    for (uint32_t i = 0; i < array.Length(); i++) {
      Napi::Value item = array.Get(i);
      if (!item.IsTypedArray()) {
        delete request;
        throw Napi::TypeError::New(env, "write needs TypedArray chunks");
      }
      request->bufs.push_back(BufferOf(item.As<Napi::TypedArray>()));
    }
  } else if (chunks.IsTypedArray()) {
    request->bufs.push_back(BufferOf(chunks.As<Napi::TypedArray>()));
  } else {
    delete request;
    throw Napi::TypeError::New(env, "write needs a TypedArray");
  }

  int r =
      mp_conn_write(conn_, request->bufs.data(), request->bufs.size(), request);
  if (r != 0) {
    delete request;
    return Napi::Number::New(env, r);
  }
  request->keep = Napi::Persistent(chunks);
  pending_++;
  UpdateRef();
  return Napi::Number::New(env, 0);
}

Napi::Value Connection::Shutdown(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();

  if (conn_ == nullptr || closing_)
    return Napi::Number::New(env, -EBADF);
  int r = mp_conn_shutdown(conn_, nullptr);
  if (r == 0) {
    pending_++;
    UpdateRef();
  }
  return Napi::Number::New(env, r);
}

Napi::Value Connection::Close(const Napi::CallbackInfo &info) {
  if (conn_ != nullptr && !closing_) {
    closing_ = true;
    UpdateRef();
    mp_conn_close(conn_, info.Length() > 0 && info[0].ToBoolean());
  }
  return info.Env().Undefined();
}

Napi::Value Connection::GetInfo(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  Napi::Object result = Napi::Object::New(env);
  mp_info_t native;

  // getInfo(false) leaves out the addresses, which cost system calls on
  // Linux.
  bool with_addresses = info.Length() < 1 || info[0].ToBoolean();
  if (conn_ == nullptr ||
      mp_conn_get_info(conn_, &native, with_addresses ? 1 : 0) != 0)
    return env.Null();
  if (native.has_local)
    SetAddress(result, "local", native.local);
  if (native.has_remote)
    SetAddress(result, "remote", native.remote);
  result.Set("mptcp",
             native.mptcp < 0
                 ? env.Null()
                 : Napi::Boolean::New(env, native.mptcp).As<Napi::Value>());
  result.Set("fallback", Napi::Boolean::New(env, native.fallback != 0));
  if (native.tls_protocol[0] != '\0')
    result.Set("tlsProtocol", Napi::String::New(env, native.tls_protocol));
  if (native.tls_alpn[0] != '\0')
    result.Set("tlsAlpn", Napi::String::New(env, native.tls_alpn));
  return result;
}

// getPaths(): the report object when the backend has it at once, undefined
// when a PATHS event brings it, or a negative errno.
Napi::Value Connection::GetPaths(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  mp_path_report_t *report = nullptr;

  if (conn_ == nullptr || closing_)
    return Napi::Number::New(env, -EBADF);
  int r = mp_conn_get_paths(conn_, &report);
  if (r < 0)
    return Napi::Number::New(env, r);
  if (r == 0)
    return env.Undefined();

  napi_value value;
  napi_status status = MakeReportValue(env, report, &value);
  std::free(report);
  if (status != napi_ok)
    throw Napi::Error::New(env);
  return Napi::Value(env, value);
}

Napi::Value Connection::SetNoDelay(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();

  if (conn_ == nullptr || closing_)
    return Napi::Number::New(env, -EBADF);
  return Napi::Number::New(
      env, mp_conn_set_no_delay(conn_, info[0].ToBoolean() ? 1 : 0));
}

Napi::Value Connection::SetKeepAlive(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();

  if (conn_ == nullptr || closing_)
    return Napi::Number::New(env, -EBADF);
  return Napi::Number::New(
      env, mp_conn_set_keep_alive(conn_, info[0].ToBoolean() ? 1 : 0,
                                  info[1].ToNumber().Uint32Value()));
}

Napi::Value Connection::RefMethod(const Napi::CallbackInfo &info) {
  refed_ = true;
  UpdateRef();
  return info.Env().Undefined();
}

Napi::Value Connection::UnrefMethod(const Napi::CallbackInfo &info) {
  refed_ = false;
  UpdateRef();
  return info.Env().Undefined();
}

// Sets a number property; part of the raw Node-API path of Dispatch.
napi_status SetNumber(napi_env env, napi_value target, const char *name,
                      double value) {
  napi_value number;
  napi_status status = napi_create_double(env, value, &number);
  if (status != napi_ok)
    return status;
  return napi_set_named_property(env, target, name, number);
}

napi_status SetString(napi_env env, napi_value target, const char *name,
                      const char *value) {
  napi_value text;
  napi_status status =
      napi_create_string_utf8(env, value, NAPI_AUTO_LENGTH, &text);
  if (status != napi_ok)
    return status;
  return napi_set_named_property(env, target, name, text);
}

// Builds the NativeError object of lib/binding.ts.
napi_status MakeErrorValue(napi_env env, const mp_error_t &error,
                           napi_value *result) {
  napi_status status = napi_create_object(env, result);
  if (status == napi_ok)
    status = SetNumber(env, *result, "errno", error.code);
  if (status == napi_ok)
    status = SetString(env, *result, "syscall",
                       error.syscall != nullptr ? error.syscall : "");
  if (status == napi_ok)
    status = SetNumber(env, *result, "domain", error.domain);
  if (status == napi_ok)
    status = SetNumber(env, *result, "raw", error.raw);
  if (status == napi_ok && error.has_address) {
    int port = 0;
    int family = 0;
    std::string text = FormatAddress(error.address, &port, &family);
    status = SetString(env, *result, "address", text.c_str());
    if (status == napi_ok)
      status = SetNumber(env, *result, "port", port);
    if (status == napi_ok)
      status = SetString(env, *result, "family", family == 6 ? "IPv6" : "IPv4");
  }
  return status;
}

// Sets <prefix>Address and <prefix>Port from a socket address.
napi_status SetEndpoint(napi_env env, napi_value target, const char *prefix,
                        const struct sockaddr_storage &address) {
  int port = 0;
  int family = 0;
  std::string text = FormatAddress(address, &port, &family);
  std::string name(prefix);
  napi_status status =
      SetString(env, target, (name + "Address").c_str(), text.c_str());
  if (status == napi_ok)
    status = SetNumber(env, target, (name + "Port").c_str(), port);
  return status;
}

napi_status MakePathValue(napi_env env, const mp_path_t &path,
                          napi_value *result) {
  napi_value backup;
  napi_status status = napi_create_object(env, result);
  if (status == napi_ok)
    status = SetNumber(env, *result, "id", path.id);
  if (status == napi_ok && path.has_local)
    status = SetEndpoint(env, *result, "local", path.local);
  if (status == napi_ok && path.has_remote)
    status = SetEndpoint(env, *result, "remote", path.remote);
  if (status == napi_ok && path.interface_name[0] != '\0')
    status = SetString(env, *result, "interface", path.interface_name);
  if (status == napi_ok)
    status = SetNumber(env, *result, "bytesSent",
                       static_cast<double>(path.bytes_sent));
  if (status == napi_ok)
    status = SetNumber(env, *result, "bytesReceived",
                       static_cast<double>(path.bytes_received));
  if (status == napi_ok && path.rtt_us > 0)
    status = SetNumber(env, *result, "rtt", path.rtt_us / 1000.0);
  if (status == napi_ok) {
    status = path.backup < 0 ? napi_get_null(env, &backup)
                             : napi_get_boolean(env, path.backup != 0, &backup);
  }
  if (status == napi_ok)
    status = napi_set_named_property(env, *result, "backup", backup);
  return status;
}

// Builds { bytesSent, bytesReceived, paths: [...] } from a path report.
napi_status MakeReportValue(napi_env env, const mp_path_report_t *report,
                            napi_value *result) {
  napi_value paths;
  napi_status status = napi_create_object(env, result);
  if (status == napi_ok)
    status = SetNumber(env, *result, "bytesSent",
                       static_cast<double>(report->bytes_sent));
  if (status == napi_ok)
    status = SetNumber(env, *result, "bytesReceived",
                       static_cast<double>(report->bytes_received));
  if (status == napi_ok)
    status = napi_create_array_with_length(env, report->count, &paths);
  for (size_t i = 0; status == napi_ok && i < report->count; i++) {
    napi_value path;
    status = MakePathValue(env, report->paths[i], &path);
    if (status == napi_ok)
      status = napi_set_element(env, paths, static_cast<uint32_t>(i), path);
  }
  if (status == napi_ok)
    status = napi_set_named_property(env, *result, "paths", paths);
  return status;
}

napi_status Connection::Dispatch(napi_env env, QueuedEvent &event) {
  napi_value arg = nullptr;
  napi_status status = napi_ok;

  switch (event.type) {
  case MP_EVENT_DATA: {
    {
      std::lock_guard<std::mutex> lock(env_data_->mutex());
      queued_bytes_ -= event.len;
      if (limited_ && queued_bytes_ < kMaxQueuedBytes / 2) {
        limited_ = false;
        UpdateRead();
      }
    }
    // The bytes are copied into a Buffer that V8 owns. Handing the malloc'd
    // memory over with napi_create_external_buffer saves the copy, but each
    // external buffer needs a finalizer, and in the download benchmark V8
    // then ran a mark-compact collection every 70 MiB or so; the copy cost
    // less CPU (docs/BENCHMARKS.md). Electron refuses external buffers too.
    void *copy;
    status = napi_create_buffer_copy(env, event.len, event.data, &copy, &arg);
    std::free(event.data);
    event.data = nullptr;
    break;
  }
  case MP_EVENT_WRITE:
  case MP_EVENT_SHUTDOWN:
    delete static_cast<WriteRequest *>(event.req);
    event.req = nullptr;
    pending_--;
    UpdateRef();
    if (event.error.code == 0)
      status = napi_get_null(env, &arg);
    else
      status = MakeErrorValue(env, event.error, &arg);
    break;
  case MP_EVENT_ERROR:
  case MP_EVENT_WAITING:
    status = MakeErrorValue(env, event.error, &arg);
    break;
  case MP_EVENT_PATHS:
    status =
        MakeReportValue(env, static_cast<mp_path_report_t *>(event.data), &arg);
    std::free(event.data);
    event.data = nullptr;
    break;
  case MP_EVENT_VIABILITY:
  case MP_EVENT_BETTER_PATH:
    status = napi_get_boolean(env, event.len != 0, &arg);
    break;
  case MP_EVENT_CLOSE:
    mp_conn_free(conn_);
    conn_ = nullptr;
    open_ = false;
    env_data_->RemoveLive(this);
    UpdateRef();
    break;
  default:
    break;
  }
  if (status == napi_ok && arg == nullptr)
    status = napi_get_undefined(env, &arg);

  napi_value self = nullptr;
  napi_value callback = nullptr;
  napi_value type = nullptr;
  if (status == napi_ok)
    status = napi_get_reference_value(env, static_cast<napi_ref>(*this), &self);
  if (status == napi_ok)
    status = napi_get_reference_value(env, static_cast<napi_ref>(callback_),
                                      &callback);
  if (status == napi_ok)
    status = napi_create_int32(env, event.type, &type);
  // After CLOSE the object may be collected once the callback returns.
  if (event.type == MP_EVENT_CLOSE)
    napi_reference_unref(env, static_cast<napi_ref>(*this), nullptr);
  if (status != napi_ok || callback == nullptr || self == nullptr)
    return status;

  napi_value args[2] = {type, arg};
  napi_value result;
  return napi_call_function(env, self, callback, 2, args, &result);
}

void Connection::Discard(QueuedEvent &event) {
  if (event.type == MP_EVENT_DATA || event.type == MP_EVENT_PATHS)
    std::free(event.data);
  if (event.type == MP_EVENT_WRITE || event.type == MP_EVENT_SHUTDOWN)
    delete static_cast<WriteRequest *>(event.req);
  if (event.type == MP_EVENT_CLOSE)
    Detach();
}

void Connection::Detach() {
  if (conn_ == nullptr)
    return;
  mp_conn_free(conn_);
  conn_ = nullptr;
  open_ = false;
  Unref();
}

// ---------------------------------------------------------------------------
// Module functions

Napi::Value Listen(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  std::string address;
  const char *address_ptr = nullptr;
  int fallback = 0;

  if (info[0].IsString()) {
    address = info[0].As<Napi::String>().Utf8Value();
    address_ptr = address.c_str();
  }
  int fd = mp_listen(
      address_ptr, static_cast<uint16_t>(info[1].ToNumber().Uint32Value()),
      info[2].ToNumber().Int32Value(), info[3].ToNumber().Int32Value(),
      info[4].ToBoolean() ? 1 : 0, &fallback);
  Napi::Object result = Napi::Object::New(env);
  result.Set("fd", Napi::Number::New(env, fd));
  result.Set("fallback", Napi::Boolean::New(env, fallback != 0));
  return result;
}

Napi::Value IsMptcp(const Napi::CallbackInfo &info) {
  return Napi::Number::New(info.Env(),
                           mp_fd_is_mptcp(info[0].ToNumber().Int32Value()));
}

void DeleteEnvData(Napi::Env, EnvData *data) {
  delete data;
}

// Keeps this shared object mapped until the process exits. Node unloads an
// addon (dlclose) when the last environment that loaded it goes away, such
// as a worker that was its only user. Threads that the environment's cleanup
// hook does not join may still run code of this object then: a dispatch
// queue returning from the CLOSE emit or releasing a block on macOS, and the
// Network framework emulation's threads on Linux. The handle is never closed.
void PinModule() {
  static std::once_flag pinned;
  std::call_once(pinned, [] {
    Dl_info info;
    if (dladdr(reinterpret_cast<void *>(&PinModule), &info) != 0 &&
        info.dli_fname != nullptr)
      dlopen(info.dli_fname, RTLD_LAZY | RTLD_NODELETE);
  });
}

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  PinModule();
  env.SetInstanceData<EnvData, DeleteEnvData>(new EnvData(env));

  exports.Set("Connection", Connection::Define(env));
  exports.Set("listen", Napi::Function::New(env, Listen));
  exports.Set("isMptcp", Napi::Function::New(env, IsMptcp));
  exports.Set("backend", Napi::String::New(env, mp_backend_name()));
  exports.Set("resolvesNames",
              Napi::Boolean::New(env, mp_backend_resolves_names() != 0));
  return exports;
}

} // namespace

NODE_API_MODULE(nw_mptcp, Init)
