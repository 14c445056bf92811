/*
 * wire.h: the seed <-> memory server page protocol, as C structs. The format is drawn in
 * memsrv.c's header comment (the server is where a malformed request is met); this file only
 * declares it for both ends. Little endian on the wire: both ends are x86-64 or arm64 here,
 * and a big-endian build stops below rather than speak it wrongly.
 */
#ifndef SF_LAZY_WIRE_H
#define SF_LAZY_WIRE_H

#include <stdint.h>

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "the lazy-memory wire format is little endian; this host is not"
#endif

#define SF_WIRE_VERSION 1
#define SF_WIRE_REQ_MAGIC 0x514d4653u /* "SFMQ" */
#define SF_WIRE_REP_MAGIC 0x524d4653u /* "SFMR" */

enum sf_wire_type {
  SF_WIRE_PAGES = 1, /* pages [first, first + count) of a region */
  SF_WIRE_INFO = 2,  /* a region's length and page size */
};

enum sf_wire_status {
  SF_WIRE_OK = 0,
  SF_WIRE_BAD_MAGIC = 1,
  SF_WIRE_BAD_VERSION = 2,
  SF_WIRE_BAD_TYPE = 3,
  SF_WIRE_BAD_FLAGS = 4,
  SF_WIRE_NO_REGION = 5,
  SF_WIRE_BAD_RANGE = 6,
  SF_WIRE_TOO_MANY = 7,
};

/* Request flag (PAGES): the seed receives the job's multicast, so pages that the server
 * multicast within its lockstep window may be answered "on their way" (a bit in a second
 * bitmap) instead of sent again. The reply then carries that bitmap after the zero bitmap. */
#define SF_WIRE_FLAG_MCAST 1u

typedef struct sf_wire_req {
  uint32_t magic;
  uint8_t version;
  uint8_t type;
  uint16_t flags; /* SF_WIRE_FLAG_MCAST or 0; other bits are reserved */
  uint32_t region;
  uint32_t count;
  uint64_t first;
  uint64_t tag;
} sf_wire_req;

typedef struct sf_wire_rep {
  uint32_t magic;
  uint8_t version;
  uint8_t type;
  uint16_t status;
  uint32_t region;
  uint32_t count;
  uint64_t first;
  uint64_t tag;
  uint32_t page_size;
  uint32_t sent; /* pages in the body (PAGES), 0 otherwise */
} sf_wire_rep;

typedef struct sf_wire_info {
  uint64_t length; /* bytes of the region */
  uint64_t pages;
} sf_wire_info;

_Static_assert(sizeof(sf_wire_req) == 32, "request header is 32 bytes");
_Static_assert(sizeof(sf_wire_rep) == 40, "reply header is 40 bytes");
_Static_assert(sizeof(sf_wire_info) == 16, "INFO body is 16 bytes");

/* Bytes of a PAGES reply's zero bitmap for `count` pages: one bit a page, padded to 8 bytes so
 * that the pages after it stay 8-byte aligned in the receiver's buffer. */
static inline uint32_t sf_wire_bitmap_bytes(uint32_t count) { return (count + 63) / 64 * 8; }

/* A reply status in words, for messages. */
static inline const char *sf_wire_status_text(unsigned s) {
  switch (s) {
    case SF_WIRE_OK: return "ok";
    case SF_WIRE_BAD_MAGIC: return "not a page request (bad magic)";
    case SF_WIRE_BAD_VERSION: return "unsupported protocol version";
    case SF_WIRE_BAD_TYPE: return "unknown request type";
    case SF_WIRE_BAD_FLAGS: return "reserved flags set";
    case SF_WIRE_NO_REGION: return "no such region";
    case SF_WIRE_BAD_RANGE: return "pages beyond the region";
    case SF_WIRE_TOO_MANY: return "too many pages in one request";
    default: return "unknown status";
  }
}

#endif
