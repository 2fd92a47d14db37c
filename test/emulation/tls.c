/*
 * tls.c: the emulated framework's TLS, a client session run by OpenSSL on
 * a connected, non-blocking socket. The I/O thread drives every call.
 *
 * The trust store is OpenSSL's default (SSL_CTX_set_default_verify_paths),
 * so SSL_CERT_FILE and SSL_CERT_DIR choose it, as the system store does for
 * the framework. Failures are reported in the framework's terms: a TLS
 * failure is an OSStatus of SecBase.h in nw_error_domain_tls, a socket
 * failure a Darwin errno in nw_error_domain_posix.
 *
 * In the addon this file uses Node's OpenSSL: node-gyp puts its headers on
 * the include path, and the node executable exports its symbols. The
 * self-tests link the system's libssl instead.
 */
#include "internal.h"

#include <arpa/inet.h>
#include <errno.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <stdlib.h>
#include <string.h>

/* Minimum version when the options set none. NOTE: the framework's default
 * is a guess; sec_protocol_options_get_default_min_tls_protocol_version
 * reports it on a Mac. */
#define DEFAULT_MIN_VERSION TLS1_2_VERSION

struct emu_tls {
  SSL_CTX *context;
  SSL *ssl;
  bool close_sent;
};

/*
 * OSStatus for a certificate that OpenSSL rejected. NOTE: the framework
 * reports the result of its own trust evaluation, so these pairs are
 * guesses from the meaning of each code in SecBase.h, except for a
 * self-signed leaf, which URLSession logs show failing with errSSLNoRootCert.
 */
static int status_of_verify_result(long result) {
  switch (result) {
  case X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT:
  case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT:
  case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY:
  case X509_V_ERR_UNABLE_TO_VERIFY_LEAF_SIGNATURE:
    return errSSLNoRootCert;
  case X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN:
    return errSSLUnknownRootCert;
  case X509_V_ERR_CERT_HAS_EXPIRED:
    return errSSLCertExpired;
  case X509_V_ERR_CERT_NOT_YET_VALID:
    return errSSLCertNotYetValid;
  case X509_V_ERR_HOSTNAME_MISMATCH:
  case X509_V_ERR_IP_ADDRESS_MISMATCH:
    return errSSLHostNameMismatch;
  default:
    return errSSLXCertChainInvalid;
  }
}

/* OSStatus for a fatal alert from the server (RFC 8446, 6.2). SecBase.h
 * lists the errSSLPeer* codes in the order of the alerts. */
static int status_of_alert(int alert) {
  switch (alert) {
  case SSL_AD_UNEXPECTED_MESSAGE:
    return errSSLPeerUnexpectedMsg;
  case SSL_AD_BAD_RECORD_MAC:
    return errSSLPeerBadRecordMac;
  case SSL_AD_DECRYPTION_FAILED:
    return errSSLPeerDecryptionFail;
  case SSL_AD_RECORD_OVERFLOW:
    return errSSLPeerRecordOverflow;
  case SSL_AD_DECOMPRESSION_FAILURE:
    return errSSLPeerDecompressFail;
  case SSL_AD_HANDSHAKE_FAILURE:
    return errSSLPeerHandshakeFail;
  case SSL_AD_BAD_CERTIFICATE:
    return errSSLPeerBadCert;
  case SSL_AD_UNSUPPORTED_CERTIFICATE:
    return errSSLPeerUnsupportedCert;
  case SSL_AD_CERTIFICATE_REVOKED:
    return errSSLPeerCertRevoked;
  case SSL_AD_CERTIFICATE_EXPIRED:
    return errSSLPeerCertExpired;
  case SSL_AD_CERTIFICATE_UNKNOWN:
    return errSSLPeerCertUnknown;
  case SSL_AD_ILLEGAL_PARAMETER:
    return errSSLIllegalParam;
  case SSL_AD_UNKNOWN_CA:
    return errSSLPeerUnknownCA;
  case SSL_AD_ACCESS_DENIED:
    return errSSLPeerAccessDenied;
  case SSL_AD_DECODE_ERROR:
    return errSSLPeerDecodeError;
  case SSL_AD_DECRYPT_ERROR:
    return errSSLPeerDecryptError;
  case SSL_AD_PROTOCOL_VERSION:
    return errSSLPeerProtocolVersion;
  case SSL_AD_INSUFFICIENT_SECURITY:
    return errSSLPeerInsufficientSecurity;
  case SSL_AD_INTERNAL_ERROR:
    return errSSLPeerInternalError;
  case SSL_AD_USER_CANCELLED:
    return errSSLPeerUserCancelled;
  case SSL_AD_NO_RENEGOTIATION:
    return errSSLPeerNoRenegotiation;
  case SSL_AD_UNSUPPORTED_EXTENSION:
    return errSSLUnsupportedExtension;
  case SSL_AD_UNRECOGNIZED_NAME:
    return errSSLUnrecognizedName;
  case SSL_AD_MISSING_EXTENSION:
    return errSSLMissingExtension;
  case SSL_AD_CERTIFICATE_REQUIRED:
    return errSSLCertificateRequired;
  default:
    return errSSLHandshakeFail;
  }
}

/* OSStatus for an OpenSSL failure that is no certificate check and no
 * alert from the server. */
static int status_of_ssl_error(unsigned long error, bool handshaking) {
  int reason = ERR_GET_REASON(error);

  if (ERR_GET_LIB(error) == ERR_LIB_SSL) {
    /* OpenSSL numbers a received alert as SSL_AD_REASON_OFFSET plus the
     * alert (ssl.h). */
    if (reason > SSL_AD_REASON_OFFSET && reason < SSL_AD_REASON_OFFSET + 256)
      return status_of_alert(reason - SSL_AD_REASON_OFFSET);
    /* NOTE: a guess. The server chose a version below the minimum, which
     * the framework may report with another code. */
    if (reason == SSL_R_UNSUPPORTED_PROTOCOL)
      return errSSLPeerProtocolVersion;
  }
  return handshaking ? errSSLHandshakeFail : errSSLProtocol;
}

/* Classifies the result r of an SSL call. */
static emu_io_t classify(emu_tls_t *tls, int r, bool handshaking,
                         emu_failure_t *failure) {
  int saved_errno = errno;
  unsigned long error;
  long verify;

  switch (SSL_get_error(tls->ssl, r)) {
  case SSL_ERROR_NONE:
    return EMU_IO_DONE;
  case SSL_ERROR_WANT_READ:
    return EMU_IO_WANT_READ;
  case SSL_ERROR_WANT_WRITE:
    return EMU_IO_WANT_WRITE;
  case SSL_ERROR_ZERO_RETURN:
    /* close_notify from the server. It ends the stream once the session
     * is up; during the handshake it ends the attempt. */
    if (!handshaking)
      return EMU_IO_EOF;
    failure->domain = nw_error_domain_tls;
    failure->code = errSSLClosedGraceful;
    return EMU_IO_FAILED;
  case SSL_ERROR_SYSCALL:
    error = ERR_peek_last_error();
    if (error == 0 && saved_errno != 0) {
      failure->domain = nw_error_domain_posix;
      failure->code = emu_darwin_errno(saved_errno);
      return EMU_IO_FAILED;
    }
    /* The server closed the socket without close_notify. With
     * SSL_OP_IGNORE_UNEXPECTED_EOF, OpenSSL reports that as
     * SSL_ERROR_ZERO_RETURN after the handshake, so only the handshake
     * gets here. */
    failure->domain = nw_error_domain_tls;
    failure->code = error != 0 ? status_of_ssl_error(error, handshaking)
                               : errSSLClosedNoNotify;
    return EMU_IO_FAILED;
  default:
    failure->domain = nw_error_domain_tls;
    verify = SSL_get_verify_result(tls->ssl);
    if (handshaking && verify != X509_V_OK)
      failure->code = status_of_verify_result(verify);
    else
      failure->code = status_of_ssl_error(ERR_peek_last_error(), handshaking);
    return EMU_IO_FAILED;
  }
}

/* Sets the name or address that SNI and the certificate check use. */
static bool set_peer_name(SSL *ssl, const emu_tls_settings_t *settings,
                          nw_endpoint_t endpoint,
                          const struct sockaddr *remote) {
  const char *name = settings->server_name;
  char address[INET6_ADDRSTRLEN];
  const void *raw;

  if (name == NULL)
    name = emu_endpoint_hostname(endpoint);
  if (name != NULL)
    return SSL_set_tlsext_host_name(ssl, name) == 1 &&
           SSL_set1_host(ssl, name) == 1;

  /* An address endpoint without a server name: no SNI (RFC 6066, 3 allows
   * none for addresses), and the certificate must list the address. */
  raw = remote->sa_family == AF_INET6
            ? (const void *)&((const struct sockaddr_in6 *)remote)->sin6_addr
            : (const void *)&((const struct sockaddr_in *)remote)->sin_addr;
  if (inet_ntop(remote->sa_family, raw, address, sizeof(address)) == NULL)
    return false;
  return X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), address) == 1;
}

emu_tls_t *emu_tls_create(const emu_tls_settings_t *settings,
                          nw_endpoint_t endpoint, const struct sockaddr *remote,
                          int fd, emu_failure_t *failure) {
  emu_tls_t *tls = calloc(1, sizeof(*tls));
  int min_version = DEFAULT_MIN_VERSION;

  failure->domain = nw_error_domain_tls;
  failure->code = errSSLHandshakeFail;
  if (tls == NULL)
    return NULL;
  ERR_clear_error();

  /* One context per connection, so that each connection reads the trust
   * store, and SSL_CERT_FILE, when it starts. */
  tls->context = SSL_CTX_new(TLS_client_method());
  if (tls->context == NULL ||
      SSL_CTX_set_default_verify_paths(tls->context) != 1)
    goto fail;
  SSL_CTX_set_verify(tls->context, SSL_VERIFY_PEER, NULL);

  tls->ssl = SSL_new(tls->context);
  if (tls->ssl == NULL)
    goto fail;
  if (settings->min_version == tls_protocol_version_TLSv13)
    min_version = TLS1_3_VERSION;
  if (SSL_set_min_proto_version(tls->ssl, min_version) != 1)
    goto fail;
  /* SSL_OP_IGNORE_UNEXPECTED_EOF: a FIN without close_notify ends the
   * stream, as it ends a TCP stream. Partial writes let a send complete
   * piece by piece, as with a socket. */
  SSL_set_options(tls->ssl, SSL_OP_IGNORE_UNEXPECTED_EOF);
  SSL_set_mode(tls->ssl, SSL_MODE_ENABLE_PARTIAL_WRITE |
                             SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
  if (!set_peer_name(tls->ssl, settings, endpoint, remote))
    goto fail;
  /* SSL_set_alpn_protos returns 0 on success (ssl.h). */
  if (settings->alpn_length > 0 &&
      SSL_set_alpn_protos(tls->ssl, settings->alpn,
                          (unsigned)settings->alpn_length) != 0)
    goto fail;
  if (SSL_set_fd(tls->ssl, fd) != 1)
    goto fail;
  SSL_set_connect_state(tls->ssl);
  return tls;

fail:
  emu_tls_free(tls);
  return NULL;
}

emu_io_t emu_tls_handshake(emu_tls_t *tls, emu_failure_t *failure) {
  errno = 0;
  ERR_clear_error();
  return classify(tls, SSL_do_handshake(tls->ssl), true, failure);
}

emu_io_t emu_tls_read(emu_tls_t *tls, void *buffer, size_t size, size_t *read,
                      emu_failure_t *failure) {
  errno = 0;
  ERR_clear_error();
  *read = 0;
  return classify(tls, SSL_read_ex(tls->ssl, buffer, size, read), false,
                  failure);
}

emu_io_t emu_tls_peek(emu_tls_t *tls, emu_failure_t *failure) {
  char byte;
  size_t peeked = 0;

  errno = 0;
  ERR_clear_error();
  return classify(tls, SSL_peek_ex(tls->ssl, &byte, 1, &peeked), false,
                  failure);
}

emu_io_t emu_tls_write(emu_tls_t *tls, const void *buffer, size_t size,
                       size_t *written, emu_failure_t *failure) {
  errno = 0;
  ERR_clear_error();
  *written = 0;
  return classify(tls, SSL_write_ex(tls->ssl, buffer, size, written), false,
                  failure);
}

/* SSL_shutdown returns 0 once close_notify is sent and the server's has not
 * arrived, which is done here: the caller goes on reading. */
emu_io_t emu_tls_close_write(emu_tls_t *tls, emu_failure_t *failure) {
  int r;

  if (tls->close_sent)
    return EMU_IO_DONE;
  errno = 0;
  ERR_clear_error();
  r = SSL_shutdown(tls->ssl);
  if (r >= 0) {
    tls->close_sent = true;
    return EMU_IO_DONE;
  }
  return classify(tls, r, false, failure);
}

void emu_tls_get_result(emu_tls_t *tls, emu_tls_result_t *out) {
  const unsigned char *alpn = NULL;
  unsigned length = 0;

  memset(out, 0, sizeof(*out));
  out->version = (uint16_t)SSL_version(tls->ssl);
  SSL_get0_alpn_selected(tls->ssl, &alpn, &length);
  if (alpn != NULL && length < sizeof(out->alpn)) {
    memcpy(out->alpn, alpn, length);
    out->alpn[length] = '\0';
  }
}

void emu_tls_free(emu_tls_t *tls) {
  if (tls == NULL)
    return;
  if (tls->ssl != NULL)
    SSL_free(tls->ssl);
  if (tls->context != NULL)
    SSL_CTX_free(tls->context);
  free(tls);
}
