/*
 * objects.c: the small emulated nw_* and sec_* objects: errors, endpoints,
 * protocol options and stacks (IP, TCP and TLS), parameters, paths, content
 * contexts, protocol definitions and metadata, and interfaces, plus name
 * resolution and the Linux to Darwin errno table.
 *
 * Constraint: name resolution never sends a packet. It accepts IP literals
 * and names from /etc/hosts (and "localhost" when the file lacks it); any
 * other name fails as a DNS "no such record" error.
 */
#include "internal.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <net/if.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* Darwin's numbers (macOS SDK sys/errno.h) of the Linux errno values that
 * sockets report. Values missing here become EIO (5). */
static const struct {
  int linux_code;
  int darwin_code;
} errno_table[] = {
    {EPERM, 1},
    {ENOENT, 2},
    {EINTR, 4},
    {EIO, 5},
    {EBADF, 9},
    {ENOMEM, 12},
    {EACCES, 13},
    {EFAULT, 14},
    {EBUSY, 16},
    {EINVAL, 22},
    {ENFILE, 23},
    {EMFILE, 24},
    {EPIPE, 32},
    {EAGAIN, 35},
    {EINPROGRESS, 36},
    {EALREADY, 37},
    {ENOTSOCK, 38},
    {EDESTADDRREQ, 39},
    {EMSGSIZE, 40},
    {EPROTOTYPE, 41},
    {ENOPROTOOPT, 42},
    {EPROTONOSUPPORT, 43},
    {ESOCKTNOSUPPORT, 44},
    {EOPNOTSUPP, 102},
    {EPFNOSUPPORT, 46},
    {EAFNOSUPPORT, 47},
    {EADDRINUSE, 48},
    {EADDRNOTAVAIL, 49},
    {ENETDOWN, 50},
    {ENETUNREACH, 51},
    {ENETRESET, 52},
    {ECONNABORTED, 53},
    {ECONNRESET, 54},
    {ENOBUFS, 55},
    {EISCONN, 56},
    {ENOTCONN, 57},
    {ESHUTDOWN, 58},
    {ETIMEDOUT, 60},
    {ECONNREFUSED, 61},
    {EHOSTDOWN, 64},
    {EHOSTUNREACH, 65},
    {ENOSYS, 78},
    {EOVERFLOW, 84},
    {ECANCELED, 89},
    {EPROTO, 100},
};

int emu_darwin_errno(int linux_code) {
  size_t i;

  for (i = 0; i < sizeof(errno_table) / sizeof(errno_table[0]); i++) {
    if (errno_table[i].linux_code == linux_code)
      return errno_table[i].darwin_code;
  }
  return 5;
}

socklen_t emu_sockaddr_length(const struct sockaddr *address) {
  return address->sa_family == AF_INET6 ? sizeof(struct sockaddr_in6)
                                        : sizeof(struct sockaddr_in);
}

/* Errors */

struct nw_error {
  emu_object_t base;
  nw_error_domain_t domain;
  int code;
};

const emu_class_t emu_class_error = {"nw_error", EMU_FAMILY_NW, NULL};

nw_error_t emu_error_create(nw_error_domain_t domain, int code) {
  nw_error_t error = emu_object_create(&emu_class_error, sizeof(*error));

  error->domain = domain;
  error->code = code;
  return error;
}

nw_error_domain_t nw_error_get_error_domain(nw_error_t error) {
  emu_object_check(error, &emu_class_error, "nw_error_get_error_domain");
  return error->domain;
}

int nw_error_get_error_code(nw_error_t error) {
  emu_object_check(error, &emu_class_error, "nw_error_get_error_code");
  return error->code;
}

/* Content contexts */

struct nw_content_context {
  emu_object_t base;
  bool is_final;
};

const emu_class_t emu_class_content_context = {"nw_content_context",
                                               EMU_FAMILY_NW, NULL};

static struct nw_content_context default_message_context = {
    .base = EMU_IMMORTAL_HEADER(emu_class_content_context), .is_final = false};
static struct nw_content_context final_message_context = {
    .base = EMU_IMMORTAL_HEADER(emu_class_content_context), .is_final = true};

const nw_content_context_t nw_emulation_default_message_context =
    &default_message_context;
const nw_content_context_t nw_emulation_final_message_context =
    &final_message_context;

nw_content_context_t emu_content_context_create(bool is_final) {
  nw_content_context_t context =
      emu_object_create(&emu_class_content_context, sizeof(*context));

  context->is_final = is_final;
  return context;
}

bool nw_content_context_get_is_final(nw_content_context_t context) {
  emu_object_check(context, &emu_class_content_context,
                   "nw_content_context_get_is_final");
  return context->is_final;
}

/* Endpoints */

struct nw_endpoint {
  emu_object_t base;
  nw_endpoint_type_t type;
  /* Address endpoints: the address with its port. */
  struct sockaddr_storage address;
  /* Host endpoints: the name, and the port in host byte order. */
  char *hostname;
  uint16_t port;
};

static void dispose_endpoint(void *object) {
  free(((nw_endpoint_t)object)->hostname);
}

const emu_class_t emu_class_endpoint = {"nw_endpoint", EMU_FAMILY_NW,
                                        dispose_endpoint};

/* Parses an IPv4 or IPv6 literal, with an optional %zone on IPv6, into
 * *out with the port set. Returns false for anything else. */
static bool parse_literal(const char *text, uint16_t port,
                          struct sockaddr_storage *out) {
  struct sockaddr_in *v4 = (struct sockaddr_in *)out;
  struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)out;
  char copy[INET6_ADDRSTRLEN + IF_NAMESIZE + 2];
  char *zone;

  memset(out, 0, sizeof(*out));
  if (inet_pton(AF_INET, text, &v4->sin_addr) == 1) {
    v4->sin_family = AF_INET;
    v4->sin_port = htons(port);
    return true;
  }
  if (strlen(text) >= sizeof(copy))
    return false;
  strcpy(copy, text);
  zone = strchr(copy, '%');
  if (zone != NULL)
    *zone++ = '\0';
  if (inet_pton(AF_INET6, copy, &v6->sin6_addr) != 1)
    return false;
  v6->sin6_family = AF_INET6;
  v6->sin6_port = htons(port);
  if (zone != NULL) {
    v6->sin6_scope_id = if_nametoindex(zone);
    if (v6->sin6_scope_id == 0)
      return false;
  }
  return true;
}

/* Parses a decimal port. Service names are not emulated. */
static bool parse_port(const char *text, uint16_t *out) {
  unsigned long value = 0;
  const char *p;

  if (text == NULL || *text == '\0')
    return false;
  for (p = text; *p != '\0'; p++) {
    if (!isdigit((unsigned char)*p))
      return false;
    value = value * 10 + (unsigned long)(*p - '0');
    if (value > 65535)
      return false;
  }
  *out = (uint16_t)value;
  return true;
}

nw_endpoint_t nw_endpoint_create_host(const char *hostname, const char *port) {
  struct sockaddr_storage address;
  nw_endpoint_t endpoint;
  uint16_t port_number;

  if (hostname == NULL || *hostname == '\0' || !parse_port(port, &port_number))
    return NULL;

  if (parse_literal(hostname, port_number, &address)) {
    endpoint = emu_object_create(&emu_class_endpoint, sizeof(*endpoint));
    endpoint->type = nw_endpoint_type_address;
    endpoint->address = address;
    endpoint->port = port_number;
    return endpoint;
  }

  endpoint = emu_object_create(&emu_class_endpoint, sizeof(*endpoint));
  endpoint->type = nw_endpoint_type_host;
  endpoint->hostname = strdup(hostname);
  endpoint->port = port_number;
  if (endpoint->hostname == NULL) {
    nw_release(endpoint);
    return NULL;
  }
  return endpoint;
}

nw_endpoint_t emu_endpoint_create_address(const struct sockaddr *address) {
  nw_endpoint_t endpoint =
      emu_object_create(&emu_class_endpoint, sizeof(*endpoint));

  endpoint->type = nw_endpoint_type_address;
  memcpy(&endpoint->address, address, emu_sockaddr_length(address));
  endpoint->port = ntohs(address->sa_family == AF_INET6
                             ? ((const struct sockaddr_in6 *)address)->sin6_port
                             : ((const struct sockaddr_in *)address)->sin_port);
  return endpoint;
}

const char *emu_endpoint_hostname(nw_endpoint_t endpoint) {
  return endpoint->type == nw_endpoint_type_host ? endpoint->hostname : NULL;
}

nw_endpoint_type_t nw_endpoint_get_type(nw_endpoint_t endpoint) {
  emu_object_check(endpoint, &emu_class_endpoint, "nw_endpoint_get_type");
  return endpoint->type;
}

const struct sockaddr *nw_endpoint_get_address(nw_endpoint_t endpoint) {
  emu_object_check(endpoint, &emu_class_endpoint, "nw_endpoint_get_address");
  if (endpoint->type != nw_endpoint_type_address)
    return NULL;
  return (const struct sockaddr *)&endpoint->address;
}

static bool family_allowed(int family, nw_ip_version_t version) {
  if (version == nw_ip_version_4)
    return family == AF_INET;
  if (version == nw_ip_version_6)
    return family == AF_INET6;
  return true;
}

/* Adds literal with port to out unless it is full, filtered out by
 * version, or already there. */
static void add_address(const char *literal, uint16_t port,
                        nw_ip_version_t version, struct sockaddr_storage *out,
                        size_t max, size_t *count) {
  struct sockaddr_storage address;
  size_t i;

  if (*count >= max || !parse_literal(literal, port, &address) ||
      !family_allowed(address.ss_family, version))
    return;
  for (i = 0; i < *count; i++) {
    if (memcmp(&out[i], &address, sizeof(address)) == 0)
      return;
  }
  out[(*count)++] = address;
}

/* Appends the addresses that /etc/hosts gives name. Returns true when the
 * file names it at all, whatever the families of its addresses. */
static bool lookup_hosts_file(const char *name, uint16_t port,
                              nw_ip_version_t version,
                              struct sockaddr_storage *out, size_t max,
                              size_t *count) {
  FILE *file = fopen("/etc/hosts", "re");
  char line[1024];
  bool named = false;

  if (file == NULL)
    return false;
  while (fgets(line, sizeof(line), file) != NULL) {
    char *save = NULL;
    char *comment = strchr(line, '#');
    char *address;
    char *alias;

    if (comment != NULL)
      *comment = '\0';
    address = strtok_r(line, " \t\r\n", &save);
    if (address == NULL)
      continue;
    while ((alias = strtok_r(NULL, " \t\r\n", &save)) != NULL) {
      if (strcasecmp(alias, name) == 0) {
        named = true;
        add_address(address, port, version, out, max, count);
        break;
      }
    }
  }
  fclose(file);
  return named;
}

int emu_endpoint_resolve(nw_endpoint_t endpoint, nw_ip_version_t version,
                         struct sockaddr_storage *out, size_t max,
                         size_t *count) {
  *count = 0;
  if (endpoint->type == nw_endpoint_type_address) {
    if (family_allowed(endpoint->address.ss_family, version))
      out[(*count)++] = endpoint->address;
    return 0;
  }

  if (!lookup_hosts_file(endpoint->hostname, endpoint->port, version, out, max,
                         count) &&
      strcasecmp(endpoint->hostname, "localhost") == 0) {
    /* macOS resolves localhost without a hosts entry; IPv6 comes first. */
    add_address("::1", endpoint->port, version, out, max, count);
    add_address("127.0.0.1", endpoint->port, version, out, max, count);
  }
  return *count > 0 ? 0 : kDNSServiceErr_NoSuchRecord;
}

/* Security protocol options: the TLS settings of one TLS protocol. */

struct sec_protocol_options {
  emu_object_t base;
  emu_tls_settings_t settings;
};

static void dispose_sec_protocol_options(void *object) {
  sec_protocol_options_t options = object;

  free(options->settings.server_name);
  free(options->settings.alpn);
}

const emu_class_t emu_class_sec_protocol_options = {
    "sec_protocol_options", EMU_FAMILY_SEC, dispose_sec_protocol_options};

void sec_protocol_options_set_tls_server_name(sec_protocol_options_t options,
                                              const char *server_name) {
  char *copy;

  emu_object_check(options, &emu_class_sec_protocol_options,
                   "sec_protocol_options_set_tls_server_name");
  if (server_name == NULL)
    emu_fatal("sec_protocol_options_set_tls_server_name(NULL)");
  copy = strdup(server_name);
  if (copy == NULL)
    emu_fatal("out of memory in sec_protocol_options_set_tls_server_name");
  free(options->settings.server_name);
  options->settings.server_name = copy;
}

/* Appends the protocol to the list in wire format (RFC 7301, 3.1): one
 * length byte, then the name. */
void sec_protocol_options_add_tls_application_protocol(
    sec_protocol_options_t options, const char *application_protocol) {
  emu_tls_settings_t *settings = &options->settings;
  size_t length;
  unsigned char *grown;

  emu_object_check(options, &emu_class_sec_protocol_options,
                   "sec_protocol_options_add_tls_application_protocol");
  length = application_protocol != NULL ? strlen(application_protocol) : 0;
  if (length == 0 || length > 255)
    emu_fatal("sec_protocol_options_add_tls_application_protocol: a protocol "
              "name has 1 to 255 bytes");
  if (settings->alpn_length + 1 + length > EMU_ALPN_MAX)
    emu_fatal("sec_protocol_options_add_tls_application_protocol: the ALPN "
              "list exceeds %d bytes",
              EMU_ALPN_MAX);
  grown = realloc(settings->alpn, settings->alpn_length + 1 + length);
  if (grown == NULL)
    emu_fatal("out of memory in "
              "sec_protocol_options_add_tls_application_protocol");
  grown[settings->alpn_length] = (unsigned char)length;
  memcpy(grown + settings->alpn_length + 1, application_protocol, length);
  settings->alpn = grown;
  settings->alpn_length += 1 + length;
}

void sec_protocol_options_set_min_tls_protocol_version(
    sec_protocol_options_t options, tls_protocol_version_t version) {
  emu_object_check(options, &emu_class_sec_protocol_options,
                   "sec_protocol_options_set_min_tls_protocol_version");
  if (version != tls_protocol_version_TLSv12 &&
      version != tls_protocol_version_TLSv13)
    emu_fatal("sec_protocol_options_set_min_tls_protocol_version: only TLS "
              "1.2 and 1.3 are emulated, not 0x%04x",
              (unsigned)version);
  options->settings.min_version = version;
}

/* Protocol options and stacks */

typedef enum protocol_kind {
  PROTOCOL_IP,
  PROTOCOL_TCP,
  PROTOCOL_TLS
} protocol_kind_t;

static const char *const protocol_names[] = {"IP", "TCP", "TLS"};

struct nw_protocol_options {
  emu_object_t base;
  protocol_kind_t kind;
  nw_ip_version_t ip_version;
  bool no_delay;
  bool keepalive;
  uint32_t keepalive_idle;
  sec_protocol_options_t sec; /* TLS options only */
};

static void dispose_protocol_options(void *object) {
  nw_protocol_options_t options = object;

  if (options->sec != NULL)
    sec_release(options->sec);
}

const emu_class_t emu_class_protocol_options = {
    "nw_protocol_options", EMU_FAMILY_NW, dispose_protocol_options};

static nw_protocol_options_t protocol_options_create(protocol_kind_t kind) {
  nw_protocol_options_t options =
      emu_object_create(&emu_class_protocol_options, sizeof(*options));

  options->kind = kind;
  if (kind == PROTOCOL_TLS)
    options->sec = emu_object_create(&emu_class_sec_protocol_options,
                                     sizeof(*options->sec));
  return options;
}

/* Aborts unless options are live protocol options of kind. */
static void check_options(nw_protocol_options_t options, protocol_kind_t kind,
                          const char *function) {
  emu_object_check(options, &emu_class_protocol_options, function);
  if (options->kind != kind)
    emu_fatal("%s: expected %s options, got %s options", function,
              protocol_names[kind], protocol_names[options->kind]);
}

void nw_ip_options_set_version(nw_protocol_options_t options,
                               nw_ip_version_t version) {
  check_options(options, PROTOCOL_IP, "nw_ip_options_set_version");
  options->ip_version = version;
}

void nw_tcp_options_set_no_delay(nw_protocol_options_t options, bool no_delay) {
  check_options(options, PROTOCOL_TCP, "nw_tcp_options_set_no_delay");
  options->no_delay = no_delay;
}

void nw_tcp_options_set_enable_keepalive(nw_protocol_options_t options,
                                         bool enable_keepalive) {
  check_options(options, PROTOCOL_TCP, "nw_tcp_options_set_enable_keepalive");
  options->keepalive = enable_keepalive;
}

void nw_tcp_options_set_keepalive_idle_time(nw_protocol_options_t options,
                                            uint32_t keepalive_idle_time) {
  check_options(options, PROTOCOL_TCP,
                "nw_tcp_options_set_keepalive_idle_time");
  options->keepalive_idle = keepalive_idle_time;
}

sec_protocol_options_t
nw_tls_copy_sec_protocol_options(nw_protocol_options_t options) {
  check_options(options, PROTOCOL_TLS, "nw_tls_copy_sec_protocol_options");
  return sec_retain(options->sec);
}

struct nw_protocol_stack {
  emu_object_t base;
  nw_protocol_options_t ip;
  nw_protocol_options_t tcp;
  nw_protocol_options_t tls; /* NULL without TLS */
};

static void dispose_protocol_stack(void *object) {
  nw_protocol_stack_t stack = object;

  nw_release(stack->ip);
  nw_release(stack->tcp);
  if (stack->tls != NULL)
    nw_release(stack->tls);
}

const emu_class_t emu_class_protocol_stack = {
    "nw_protocol_stack", EMU_FAMILY_NW, dispose_protocol_stack};

nw_protocol_options_t
nw_protocol_stack_copy_internet_protocol(nw_protocol_stack_t stack) {
  emu_object_check(stack, &emu_class_protocol_stack,
                   "nw_protocol_stack_copy_internet_protocol");
  return nw_retain(stack->ip);
}

/* Parameters */

struct nw_parameters {
  emu_object_t base;
  nw_protocol_stack_t stack;
  nw_multipath_service_t service;
  nw_endpoint_t local_endpoint;
};

static void dispose_parameters(void *object) {
  nw_parameters_t parameters = object;

  nw_release(parameters->stack);
  if (parameters->local_endpoint != NULL)
    nw_release(parameters->local_endpoint);
}

const emu_class_t emu_class_parameters = {"nw_parameters", EMU_FAMILY_NW,
                                          dispose_parameters};

const nw_parameters_configure_protocol_block_t
    nw_emulation_default_configuration = ^(nw_protocol_options_t options) {
      (void)options;
    };
const nw_parameters_configure_protocol_block_t nw_emulation_disable_protocol =
    ^(nw_protocol_options_t options) {
      (void)options;
    };

nw_parameters_t nw_parameters_create_secure_tcp(
    nw_parameters_configure_protocol_block_t configure_tls,
    nw_parameters_configure_protocol_block_t configure_tcp) {
  nw_parameters_t parameters;
  nw_protocol_stack_t stack;

  if (configure_tls == NULL || configure_tcp == NULL ||
      configure_tcp == NW_PARAMETERS_DISABLE_PROTOCOL)
    return NULL;

  stack = emu_object_create(&emu_class_protocol_stack, sizeof(*stack));
  stack->ip = protocol_options_create(PROTOCOL_IP);
  stack->tcp = protocol_options_create(PROTOCOL_TCP);
  if (configure_tls != NW_PARAMETERS_DISABLE_PROTOCOL)
    stack->tls = protocol_options_create(PROTOCOL_TLS);
  parameters = emu_object_create(&emu_class_parameters, sizeof(*parameters));
  parameters->stack = stack;
  parameters->service = nw_multipath_service_disabled;

  if (stack->tls != NULL &&
      configure_tls != NW_PARAMETERS_DEFAULT_CONFIGURATION)
    configure_tls(stack->tls);
  if (configure_tcp != NW_PARAMETERS_DEFAULT_CONFIGURATION)
    configure_tcp(stack->tcp);
  return parameters;
}

void nw_parameters_set_multipath_service(
    nw_parameters_t parameters, nw_multipath_service_t multipath_service) {
  emu_object_check(parameters, &emu_class_parameters,
                   "nw_parameters_set_multipath_service");
  parameters->service = multipath_service;
}

void nw_parameters_set_local_endpoint(nw_parameters_t parameters,
                                      nw_endpoint_t local_endpoint) {
  emu_object_check(parameters, &emu_class_parameters,
                   "nw_parameters_set_local_endpoint");
  if (local_endpoint != NULL) {
    emu_object_check(local_endpoint, &emu_class_endpoint,
                     "nw_parameters_set_local_endpoint");
    nw_retain(local_endpoint);
  }
  if (parameters->local_endpoint != NULL)
    nw_release(parameters->local_endpoint);
  parameters->local_endpoint = local_endpoint;
}

nw_protocol_stack_t
nw_parameters_copy_default_protocol_stack(nw_parameters_t parameters) {
  emu_object_check(parameters, &emu_class_parameters,
                   "nw_parameters_copy_default_protocol_stack");
  return nw_retain(parameters->stack);
}

void emu_parameters_copy_settings(nw_parameters_t parameters,
                                  emu_settings_t *out) {
  nw_protocol_options_t tcp = parameters->stack->tcp;

  out->service = parameters->service;
  out->ip_version = parameters->stack->ip->ip_version;
  out->no_delay = tcp->no_delay;
  out->keepalive = tcp->keepalive;
  out->keepalive_idle = tcp->keepalive_idle;
  out->local_endpoint = parameters->local_endpoint;
  if (out->local_endpoint != NULL)
    nw_retain(out->local_endpoint);

  memset(&out->tls_settings, 0, sizeof(out->tls_settings));
  out->tls = parameters->stack->tls != NULL;
  if (out->tls) {
    const emu_tls_settings_t *tls = &parameters->stack->tls->sec->settings;

    out->tls_settings.min_version = tls->min_version;
    if (tls->server_name != NULL) {
      out->tls_settings.server_name = strdup(tls->server_name);
      if (out->tls_settings.server_name == NULL)
        emu_fatal("out of memory copying TLS settings");
    }
    if (tls->alpn_length > 0) {
      out->tls_settings.alpn = malloc(tls->alpn_length);
      if (out->tls_settings.alpn == NULL)
        emu_fatal("out of memory copying TLS settings");
      memcpy(out->tls_settings.alpn, tls->alpn, tls->alpn_length);
      out->tls_settings.alpn_length = tls->alpn_length;
    }
  }
}

void emu_settings_dispose(emu_settings_t *settings) {
  if (settings->local_endpoint != NULL)
    nw_release(settings->local_endpoint);
  settings->local_endpoint = NULL;
  free(settings->tls_settings.server_name);
  free(settings->tls_settings.alpn);
  memset(&settings->tls_settings, 0, sizeof(settings->tls_settings));
}

/* Paths */

struct nw_path {
  emu_object_t base;
  nw_endpoint_t local;
  nw_endpoint_t remote;
};

static void dispose_path(void *object) {
  nw_path_t path = object;

  if (path->local != NULL)
    nw_release(path->local);
  if (path->remote != NULL)
    nw_release(path->remote);
}

const emu_class_t emu_class_path = {"nw_path", EMU_FAMILY_NW, dispose_path};

nw_path_t emu_path_create(nw_endpoint_t local, nw_endpoint_t remote) {
  nw_path_t path = emu_object_create(&emu_class_path, sizeof(*path));

  path->local = local != NULL ? nw_retain(local) : NULL;
  path->remote = remote != NULL ? nw_retain(remote) : NULL;
  return path;
}

nw_endpoint_t nw_path_copy_effective_local_endpoint(nw_path_t path) {
  emu_object_check(path, &emu_class_path,
                   "nw_path_copy_effective_local_endpoint");
  return path->local != NULL ? nw_retain(path->local) : NULL;
}

nw_endpoint_t nw_path_copy_effective_remote_endpoint(nw_path_t path) {
  emu_object_check(path, &emu_class_path,
                   "nw_path_copy_effective_remote_endpoint");
  return path->remote != NULL ? nw_retain(path->remote) : NULL;
}

/* Protocol definitions and metadata. TLS is the only protocol whose
 * definition and metadata are emulated. */

struct nw_protocol_definition {
  emu_object_t base;
};

const emu_class_t emu_class_protocol_definition = {"nw_protocol_definition",
                                                   EMU_FAMILY_NW, NULL};

nw_protocol_definition_t nw_protocol_copy_tls_definition(void) {
  return emu_object_create(&emu_class_protocol_definition,
                           sizeof(struct nw_protocol_definition));
}

struct nw_protocol_metadata {
  emu_object_t base;
  emu_tls_result_t result;
};

const emu_class_t emu_class_protocol_metadata = {"nw_protocol_metadata",
                                                 EMU_FAMILY_NW, NULL};

nw_protocol_metadata_t emu_tls_metadata_create(const emu_tls_result_t *result) {
  nw_protocol_metadata_t metadata =
      emu_object_create(&emu_class_protocol_metadata, sizeof(*metadata));

  metadata->result = *result;
  return metadata;
}

struct sec_protocol_metadata {
  emu_object_t base;
  emu_tls_result_t result;
};

const emu_class_t emu_class_sec_protocol_metadata = {"sec_protocol_metadata",
                                                     EMU_FAMILY_SEC, NULL};

sec_protocol_metadata_t
nw_tls_copy_sec_protocol_metadata(nw_protocol_metadata_t metadata) {
  sec_protocol_metadata_t sec;

  emu_object_check(metadata, &emu_class_protocol_metadata,
                   "nw_tls_copy_sec_protocol_metadata");
  sec = emu_object_create(&emu_class_sec_protocol_metadata, sizeof(*sec));
  sec->result = metadata->result;
  return sec;
}

tls_protocol_version_t
sec_protocol_metadata_get_negotiated_tls_protocol_version(
    sec_protocol_metadata_t metadata) {
  emu_object_check(metadata, &emu_class_sec_protocol_metadata,
                   "sec_protocol_metadata_get_negotiated_tls_protocol_version");
  return metadata->result.version;
}

const char *sec_protocol_metadata_get_negotiated_protocol(
    sec_protocol_metadata_t metadata) {
  emu_object_check(metadata, &emu_class_sec_protocol_metadata,
                   "sec_protocol_metadata_get_negotiated_protocol");
  return metadata->result.alpn[0] != '\0' ? metadata->result.alpn : NULL;
}

/* Interfaces */

struct nw_interface {
  emu_object_t base;
  char name[IF_NAMESIZE];
};

const emu_class_t emu_class_interface = {"nw_interface", EMU_FAMILY_NW, NULL};

nw_interface_t emu_interface_create(const char *name) {
  nw_interface_t interface =
      emu_object_create(&emu_class_interface, sizeof(*interface));

  snprintf(interface->name, sizeof(interface->name), "%s", name);
  return interface;
}

const char *nw_interface_get_name(nw_interface_t interface) {
  if (interface == NULL)
    return NULL;
  emu_object_check(interface, &emu_class_interface, "nw_interface_get_name");
  return interface->name;
}
