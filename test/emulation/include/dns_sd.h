/*
 * dns_sd.h: the DNS service error codes that the emulated Network framework
 * reports in nw_error_domain_dns, with the values of macOS's mDNSResponder
 * interface. Only the error codes are declared; no DNS-SD calls exist.
 */
#ifndef NW_EMULATION_DNS_SD_H
#define NW_EMULATION_DNS_SD_H

#include <stdint.h>

typedef int32_t DNSServiceErrorType;

enum {
  kDNSServiceErr_NoError = 0,
  kDNSServiceErr_Unknown = -65537,
  kDNSServiceErr_NoSuchName = -65538,
  kDNSServiceErr_NoMemory = -65539,
  kDNSServiceErr_BadParam = -65540,
  kDNSServiceErr_NoSuchRecord = -65554,
  kDNSServiceErr_Transient = -65562,
  kDNSServiceErr_ServiceNotRunning = -65563,
  kDNSServiceErr_NoRouter = -65566,
  kDNSServiceErr_Timeout = -65568,
  kDNSServiceErr_DefunctConnection = -65569
};

#endif /* NW_EMULATION_DNS_SD_H */
