/*
 * dispatch/dispatch.h: the part of libdispatch's C interface that the
 * emulated Network framework and native/backend_darwin.c use, for tests on
 * Linux. It declares serial queues, dispatch_async and immutable data
 * objects, with the signatures and documented behaviour of the macOS SDK.
 *
 * Constraint: plain C with clang blocks (-fblocks). Objects are counted by
 * the emulation, so every create or retain needs a matching release.
 */
#ifndef NW_EMULATION_DISPATCH_H
#define NW_EMULATION_DISPATCH_H

#include <stdbool.h>
#include <stddef.h>

#ifndef __BLOCKS__
#error "the dispatch emulation needs clang blocks (-fblocks)"
#endif

#ifdef __cplusplus
extern "C" {
#endif

typedef struct dispatch_queue_s *dispatch_queue_t;
typedef struct dispatch_queue_attr_s *dispatch_queue_attr_t;
typedef struct dispatch_data_s *dispatch_data_t;

/* Any dispatch object, for dispatch_retain and dispatch_release. As in the
 * SDK's plain C mode it is a transparent union, so those calls accept every
 * dispatch type and reject nw_* objects at compile time. */
typedef union {
  struct dispatch_queue_s *queue;
  struct dispatch_data_s *data;
} dispatch_object_t __attribute__((__transparent_union__));

typedef void (^dispatch_block_t)(void);

/* Attribute of a serial queue: one block at a time, in submission order. */
#define DISPATCH_QUEUE_SERIAL NULL

/* Destructor of dispatch_data_create that copies the buffer into memory
 * that the data object owns. */
#define DISPATCH_DATA_DESTRUCTOR_DEFAULT NULL

void dispatch_retain(dispatch_object_t object);
void dispatch_release(dispatch_object_t object);

/* Creates a queue that runs its blocks on a thread of its own. Only serial
 * queues (attr DISPATCH_QUEUE_SERIAL) are emulated. */
dispatch_queue_t dispatch_queue_create(const char *label,
                                       dispatch_queue_attr_t attr);

/* Copies block and runs it later on queue. The queue stays alive until the
 * block has run. */
void dispatch_async(dispatch_queue_t queue, dispatch_block_t block);

/* Creates a data object from size bytes at buffer. Only
 * DISPATCH_DATA_DESTRUCTOR_DEFAULT, which copies the bytes, is emulated. */
dispatch_data_t dispatch_data_create(const void *buffer, size_t size,
                                     dispatch_queue_t queue,
                                     dispatch_block_t destructor);

size_t dispatch_data_get_size(dispatch_data_t data);

/* Returns a new object with the bytes of data1 followed by those of data2.
 * Both may be released right after the call. */
dispatch_data_t dispatch_data_create_concat(dispatch_data_t data1,
                                            dispatch_data_t data2);

/* Called for each contiguous region. region is valid only during the call.
 * Returning false stops the traversal. */
typedef bool (^dispatch_data_applier_t)(dispatch_data_t region, size_t offset,
                                        const void *buffer, size_t size);

/* Calls applier once per region, in order. Returns true when every call
 * returned true. */
bool dispatch_data_apply(dispatch_data_t data, dispatch_data_applier_t applier);

#ifdef __cplusplus
}
#endif

#endif /* NW_EMULATION_DISPATCH_H */
