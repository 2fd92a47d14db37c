/*
 * Security/Security.h: the part of the Security framework's protocol
 * interface (SecProtocolOptions.h, SecProtocolMetadata.h, SecBase.h) that
 * native/backend_darwin.c calls, for the test-only Network framework
 * emulation on Linux. Signatures and values follow the macOS SDK.
 *
 * Constraint: plain C. sec_* objects are counted by the emulation and are
 * released with sec_release, never nw_release.
 */
#ifndef NW_EMULATION_SECURITY_H
#define NW_EMULATION_SECURITY_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef int32_t OSStatus;

typedef struct sec_protocol_options *sec_protocol_options_t;
typedef struct sec_protocol_metadata *sec_protocol_metadata_t;

/* Add or drop a reference to any sec_* object. sec_retain returns obj. */
void *sec_retain(void *obj);
void sec_release(void *obj);

/* TLS versions, with their wire values (RFC 8446, 4.2.1). */
typedef uint16_t tls_protocol_version_t;
enum {
  tls_protocol_version_TLSv12 = 0x0303,
  tls_protocol_version_TLSv13 = 0x0304
};

/* The TLS errors, in nw_error_domain_tls, that the emulation reports. The
 * values are those of SecBase.h. */
enum {
  errSSLProtocol = -9800,
  errSSLClosedGraceful = -9805,
  errSSLClosedAbort = -9806,
  errSSLXCertChainInvalid = -9807,
  errSSLUnknownRootCert = -9812,
  errSSLNoRootCert = -9813,
  errSSLCertExpired = -9814,
  errSSLCertNotYetValid = -9815,
  errSSLClosedNoNotify = -9816,
  errSSLPeerUnexpectedMsg = -9819,
  errSSLPeerBadRecordMac = -9820,
  errSSLPeerDecryptionFail = -9821,
  errSSLPeerRecordOverflow = -9822,
  errSSLPeerDecompressFail = -9823,
  errSSLPeerHandshakeFail = -9824,
  errSSLPeerBadCert = -9825,
  errSSLPeerUnsupportedCert = -9826,
  errSSLPeerCertRevoked = -9827,
  errSSLPeerCertExpired = -9828,
  errSSLPeerCertUnknown = -9829,
  errSSLIllegalParam = -9830,
  errSSLPeerUnknownCA = -9831,
  errSSLPeerAccessDenied = -9832,
  errSSLPeerDecodeError = -9833,
  errSSLPeerDecryptError = -9834,
  errSSLPeerProtocolVersion = -9836,
  errSSLPeerInsufficientSecurity = -9837,
  errSSLPeerInternalError = -9838,
  errSSLPeerUserCancelled = -9839,
  errSSLPeerNoRenegotiation = -9840,
  errSSLHostNameMismatch = -9843,
  errSSLUnsupportedExtension = -9855,
  errSSLHandshakeFail = -9858,
  errSSLMissingExtension = -9861,
  errSSLCertificateRequired = -9863,
  errSSLUnrecognizedName = -9865
};

/* Options of one TLS protocol instance, from nw_tls_copy_sec_protocol_options.
 * The setters copy their strings. */
void sec_protocol_options_set_tls_server_name(sec_protocol_options_t options,
                                              const char *server_name);
void sec_protocol_options_add_tls_application_protocol(
    sec_protocol_options_t options, const char *application_protocol);
void sec_protocol_options_set_min_tls_protocol_version(
    sec_protocol_options_t options, tls_protocol_version_t version);

/* Results of a handshake, from nw_tls_copy_sec_protocol_metadata. The string
 * lives as long as metadata; NULL when no ALPN protocol was negotiated. */
tls_protocol_version_t
sec_protocol_metadata_get_negotiated_tls_protocol_version(
    sec_protocol_metadata_t metadata);
const char *
sec_protocol_metadata_get_negotiated_protocol(sec_protocol_metadata_t metadata);

#ifdef __cplusplus
}
#endif

#endif /* NW_EMULATION_SECURITY_H */
