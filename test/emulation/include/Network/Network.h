/*
 * Network/Network.h: the part of Apple's Network framework C interface that
 * native/backend_darwin.c calls, for the test-only emulation on Linux. The
 * signatures and the documented behaviour follow the macOS SDK; the
 * emulation in the C files of test/emulation implements them over real
 * sockets (test/emulation/README.md lists where it differs).
 *
 * Constraint: plain C with clang blocks, as backend_darwin.c is built on
 * macOS. Objects returned by create and copy functions belong to the caller,
 * who releases them with nw_release. Objects passed to a handler or a
 * completion belong to the framework and are valid only during the call.
 */
#ifndef NW_EMULATION_NETWORK_H
#define NW_EMULATION_NETWORK_H

#include <Security/Security.h>
#include <dispatch/dispatch.h>
#include <dns_sd.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Objects */

typedef struct nw_connection *nw_connection_t;
typedef struct nw_endpoint *nw_endpoint_t;
typedef struct nw_parameters *nw_parameters_t;
typedef struct nw_protocol_stack *nw_protocol_stack_t;
typedef struct nw_protocol_options *nw_protocol_options_t;
typedef struct nw_path *nw_path_t;
typedef struct nw_error *nw_error_t;
typedef struct nw_content_context *nw_content_context_t;
typedef struct nw_protocol_definition *nw_protocol_definition_t;
typedef struct nw_protocol_metadata *nw_protocol_metadata_t;
typedef struct nw_interface *nw_interface_t;
typedef struct nw_data_transfer_report *nw_data_transfer_report_t;

/* Add or drop a reference to any nw_* object. nw_retain returns obj. */
void *nw_retain(void *obj);
void nw_release(void *obj);

/* Errors */

typedef enum {
  nw_error_domain_invalid = 0,
  /* code is an errno value in Darwin's numbering (sys/errno.h) */
  nw_error_domain_posix = 1,
  /* code is a DNSServiceErrorType (dns_sd.h) */
  nw_error_domain_dns = 2,
  /* code is an OSStatus of the Security framework */
  nw_error_domain_tls = 3
} nw_error_domain_t;

nw_error_domain_t nw_error_get_error_domain(nw_error_t error);
int nw_error_get_error_code(nw_error_t error);

/* Endpoints */

typedef enum {
  nw_endpoint_type_invalid = 0,
  nw_endpoint_type_address = 1,
  nw_endpoint_type_host = 2,
  nw_endpoint_type_bonjour_service = 3,
  nw_endpoint_type_url = 4
} nw_endpoint_type_t;

/* Creates an endpoint from a host name or an IP address literal, and a port
 * in decimal. A literal gives an address endpoint, anything else a host
 * endpoint. Returns NULL for invalid arguments. */
nw_endpoint_t nw_endpoint_create_host(const char *hostname, const char *port);

nw_endpoint_type_t nw_endpoint_get_type(nw_endpoint_t endpoint);

/* Returns the socket address of an address endpoint, with the port set, or
 * NULL for other endpoint types. The address lives as long as endpoint. */
const struct sockaddr *nw_endpoint_get_address(nw_endpoint_t endpoint);

/* Protocol options */

typedef enum {
  nw_ip_version_any = 0,
  nw_ip_version_4 = 4,
  nw_ip_version_6 = 6
} nw_ip_version_t;

/* Restricts a connection to one IP version. options are IP options. */
void nw_ip_options_set_version(nw_protocol_options_t options,
                               nw_ip_version_t version);

/* TCP options; options are the TCP options of a parameters object. */
void nw_tcp_options_set_no_delay(nw_protocol_options_t options, bool no_delay);
void nw_tcp_options_set_enable_keepalive(nw_protocol_options_t options,
                                         bool enable_keepalive);
/* Seconds of idleness before the first keep-alive probe. */
void nw_tcp_options_set_keepalive_idle_time(nw_protocol_options_t options,
                                            uint32_t keepalive_idle_time);

/* TLS options and metadata */

/* Returns the definition of the TLS protocol, for
 * nw_connection_copy_protocol_metadata. */
nw_protocol_definition_t nw_protocol_copy_tls_definition(void);

/* Returns the Security options of TLS protocol options. Changes to them
 * change the TLS options. */
sec_protocol_options_t
nw_tls_copy_sec_protocol_options(nw_protocol_options_t options);

/* Returns the Security view of TLS metadata. */
sec_protocol_metadata_t
nw_tls_copy_sec_protocol_metadata(nw_protocol_metadata_t metadata);

/* Parameters */

typedef void (^nw_parameters_configure_protocol_block_t)(
    nw_protocol_options_t options);

extern const nw_parameters_configure_protocol_block_t
    nw_emulation_default_configuration;
extern const nw_parameters_configure_protocol_block_t
    nw_emulation_disable_protocol;

/* Keeps a protocol's default options. */
#define NW_PARAMETERS_DEFAULT_CONFIGURATION (nw_emulation_default_configuration)
/* Leaves a protocol out of the stack; valid for TLS only. */
#define NW_PARAMETERS_DISABLE_PROTOCOL (nw_emulation_disable_protocol)

/* Creates parameters for TCP, with TLS on top unless configure_tls is
 * NW_PARAMETERS_DISABLE_PROTOCOL. Both configure blocks run before the call
 * returns; configure_tls gets the TLS options. */
nw_parameters_t nw_parameters_create_secure_tcp(
    nw_parameters_configure_protocol_block_t configure_tls,
    nw_parameters_configure_protocol_block_t configure_tcp);

typedef enum {
  nw_multipath_service_disabled = 0,
  nw_multipath_service_handover = 1,
  nw_multipath_service_interactive = 2,
  nw_multipath_service_aggregate = 3
} nw_multipath_service_t;

/* Any service but disabled makes the connection use MPTCP. */
void nw_parameters_set_multipath_service(
    nw_parameters_t parameters, nw_multipath_service_t multipath_service);

/* Sets the local address and port to bind, or clears them with NULL. */
void nw_parameters_set_local_endpoint(nw_parameters_t parameters,
                                      nw_endpoint_t local_endpoint);

nw_protocol_stack_t
nw_parameters_copy_default_protocol_stack(nw_parameters_t parameters);

/* Returns the IP options of the stack, or NULL when it has none. */
nw_protocol_options_t
nw_protocol_stack_copy_internet_protocol(nw_protocol_stack_t stack);

/* Paths */

/* Returns the local or remote address endpoint of the path, or NULL when
 * the path has none yet. */
nw_endpoint_t nw_path_copy_effective_local_endpoint(nw_path_t path);
nw_endpoint_t nw_path_copy_effective_remote_endpoint(nw_path_t path);

/* Interfaces */

/* Returns the interface's name, such as "lo"; it lives as long as
 * interface. */
const char *nw_interface_get_name(nw_interface_t interface);

/* Content contexts */

extern const nw_content_context_t nw_emulation_default_message_context;
extern const nw_content_context_t nw_emulation_final_message_context;

/* Context of content that does not end the stream. */
#define NW_CONNECTION_DEFAULT_MESSAGE_CONTEXT                                  \
  (nw_emulation_default_message_context)
/* Context whose completion (is_complete) ends the sending side: TCP FIN. */
#define NW_CONNECTION_FINAL_MESSAGE_CONTEXT (nw_emulation_final_message_context)

/* Returns true for the final context of a connection. A receive that
 * completes it reports the peer's end of stream. */
bool nw_content_context_get_is_final(nw_content_context_t context);

/* Connections */

typedef enum {
  nw_connection_state_invalid = 0,
  /* Waiting for a usable network, for the reason in the error. Retries
   * follow. */
  nw_connection_state_waiting = 1,
  nw_connection_state_preparing = 2,
  nw_connection_state_ready = 3,
  /* Failed for good, for the reason in the error. */
  nw_connection_state_failed = 4,
  /* Cancelled by the caller: always the last state. */
  nw_connection_state_cancelled = 5
} nw_connection_state_t;

typedef void (^nw_connection_state_changed_handler_t)(
    nw_connection_state_t state, nw_error_t error);
typedef void (^nw_connection_path_event_handler_t)(nw_path_t path);
typedef void (^nw_connection_boolean_event_handler_t)(bool value);

/* Runs exactly once per receive. content may come with an error or with
 * is_complete; is_complete with a final context is the end of the stream. */
typedef void (^nw_connection_receive_completion_t)(dispatch_data_t content,
                                                   nw_content_context_t context,
                                                   bool is_complete,
                                                   nw_error_t error);
/* Runs exactly once per send, when the stack has taken the content. */
typedef void (^nw_connection_send_completion_t)(nw_error_t error);

nw_connection_t nw_connection_create(nw_endpoint_t endpoint,
                                     nw_parameters_t parameters);
nw_endpoint_t nw_connection_copy_endpoint(nw_connection_t connection);

/* Must be called before nw_connection_start. The connection retains queue
 * and runs every handler and completion on it. */
void nw_connection_set_queue(nw_connection_t connection,
                             dispatch_queue_t queue);
void nw_connection_set_state_changed_handler(
    nw_connection_t connection, nw_connection_state_changed_handler_t handler);
void nw_connection_set_path_changed_handler(
    nw_connection_t connection, nw_connection_path_event_handler_t handler);

/* Whether reads and writes of a ready connection can succeed, and whether a
 * better path is available. The emulation stores both handlers and never
 * calls them, because its paths do not change. */
void nw_connection_set_viability_changed_handler(
    nw_connection_t connection, nw_connection_boolean_event_handler_t handler);
void nw_connection_set_better_path_available_handler(
    nw_connection_t connection, nw_connection_boolean_event_handler_t handler);

void nw_connection_start(nw_connection_t connection);

/* Closes gracefully (FIN) or, with force, with a reset (RST). Outstanding
 * sends and receives complete with ECANCELED before the cancelled state. */
void nw_connection_cancel(nw_connection_t connection);
void nw_connection_force_cancel(nw_connection_t connection);

/* Returns the current path, or NULL before the start and after a cancel. */
nw_path_t nw_connection_copy_current_path(nw_connection_t connection);

/* Returns the connection's metadata of protocol definition, or NULL before
 * the connection is ready, after a cancel, or when the connection does not
 * use that protocol. */
nw_protocol_metadata_t
nw_connection_copy_protocol_metadata(nw_connection_t connection,
                                     nw_protocol_definition_t definition);

/* Completes once at least minimum_incomplete_length bytes are available, or
 * at the end of the stream or an error, with at most maximum_length bytes.
 * While no receive is outstanding nothing is read from the socket. */
void nw_connection_receive(nw_connection_t connection,
                           uint32_t minimum_incomplete_length,
                           uint32_t maximum_length,
                           nw_connection_receive_completion_t completion);

/* Sends content (NULL only to complete a context) in order. With a final
 * context and is_complete the sending side is shut down afterwards. */
void nw_connection_send(nw_connection_t connection, dispatch_data_t content,
                        nw_content_context_t context, bool is_complete,
                        nw_connection_send_completion_t completion);

/* Data transfer reports */

typedef enum {
  nw_data_transfer_report_state_collecting = 1,
  nw_data_transfer_report_state_collected = 2
} nw_data_transfer_report_state_t;

typedef void (^nw_data_transfer_report_collect_block_t)(
    nw_data_transfer_report_t report);

/* Creates a report of the bytes that the connection transfers from now on,
 * or from the ready state when the connection is not ready yet. */
nw_data_transfer_report_t
nw_connection_create_new_data_transfer_report(nw_connection_t connection);

nw_data_transfer_report_state_t
nw_data_transfer_report_get_state(nw_data_transfer_report_t report);

/* Ends the report's span and runs collect_block once, on queue, with the
 * collected report. A report of a cancelled or failed connection ends where
 * the connection ended. */
void nw_data_transfer_report_collect(
    nw_data_transfer_report_t report, dispatch_queue_t queue,
    nw_data_transfer_report_collect_block_t collect_block);

/* Path index that sums the values of every path where a sum makes sense. */
extern const uint32_t _nw_data_transfer_report_all_paths;
#define NW_ALL_PATHS (_nw_data_transfer_report_all_paths)

/* The getters return 0 (NULL for the interface) until the report is
 * collected, or for a path_index past the path count. The round-trip time
 * of NW_ALL_PATHS is that of path 0. */
uint32_t
nw_data_transfer_report_get_path_count(nw_data_transfer_report_t report);
uint64_t nw_data_transfer_report_get_sent_transport_byte_count(
    nw_data_transfer_report_t report, uint32_t path_index);
uint64_t nw_data_transfer_report_get_received_transport_byte_count(
    nw_data_transfer_report_t report, uint32_t path_index);
uint64_t nw_data_transfer_report_get_sent_application_byte_count(
    nw_data_transfer_report_t report, uint32_t path_index);
uint64_t nw_data_transfer_report_get_received_application_byte_count(
    nw_data_transfer_report_t report, uint32_t path_index);
uint64_t nw_data_transfer_report_get_transport_smoothed_rtt_milliseconds(
    nw_data_transfer_report_t report, uint32_t path_index);
nw_interface_t
nw_data_transfer_report_copy_path_interface(nw_data_transfer_report_t report,
                                            uint32_t path_index);

#ifdef __cplusplus
}
#endif

#endif /* NW_EMULATION_NETWORK_H */
