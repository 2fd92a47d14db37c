/*
 * dispatch.c: the emulated libdispatch: serial queues, each run by a thread
 * of its own, and immutable data objects made of shared regions.
 *
 * Constraint: a queue runs one block at a time, in submission order, and
 * every queued block holds a reference to its queue until it has run, as
 * dispatch/queue.h documents. So a block may release the last outside
 * reference to the queue it runs on.
 */
#include "internal.h"

#include <Block.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

/* Stack of a queue thread. Blocks run the backend's handlers and the addon's
 * event hand-off, which need little stack. */
#define QUEUE_STACK_SIZE (512 * 1024)

typedef struct work_item {
  dispatch_block_t block;
  struct work_item *next;
} work_item_t;

/* The part of a queue that its thread owns. It outlives the queue object
 * until the thread has seen the stop request. */
typedef struct queue_worker {
  pthread_mutex_t lock;
  pthread_cond_t wake;
  work_item_t *head;
  work_item_t *tail;
  bool stop;
} queue_worker_t;

struct dispatch_queue_s {
  emu_object_t base;
  char label[64];
  queue_worker_t *worker;
};

/* A piece of memory shared by the data objects made from it. */
typedef struct data_buffer {
  atomic_long refs;
  size_t size;
  unsigned char bytes[];
} data_buffer_t;

typedef struct data_region {
  data_buffer_t *buffer;
  size_t offset;
  size_t size;
} data_region_t;

struct dispatch_data_s {
  emu_object_t base;
  size_t size;
  size_t region_count;
  data_region_t regions[];
};

static _Thread_local dispatch_queue_t current_queue;

static void dispose_queue(void *object);
static void dispose_data(void *object);

const emu_class_t emu_class_queue = {"dispatch_queue", EMU_FAMILY_DISPATCH,
                                     dispose_queue};
const emu_class_t emu_class_data = {"dispatch_data", EMU_FAMILY_DISPATCH,
                                    dispose_data};

/* Returns the emulated object behind a dispatch_object_t, whichever member
 * the caller passed. */
static void *object_of(dispatch_object_t object) {
  return (void *)object.queue;
}

void dispatch_retain(dispatch_object_t object) {
  emu_object_retain(object_of(object), EMU_FAMILY_DISPATCH, "dispatch_retain");
}

void dispatch_release(dispatch_object_t object) {
  emu_object_release(object_of(object), EMU_FAMILY_DISPATCH,
                     "dispatch_release");
}

dispatch_queue_t nw_emulation_current_queue(void) {
  return current_queue;
}

/* Runs the blocks of one queue until the queue is released and empty. */
static void *run_queue(void *argument) {
  dispatch_queue_t queue = argument;
  queue_worker_t *worker = queue->worker;

  for (;;) {
    work_item_t *item;

    pthread_mutex_lock(&worker->lock);
    while (worker->head == NULL && !worker->stop)
      pthread_cond_wait(&worker->wake, &worker->lock);
    if (worker->head == NULL) {
      pthread_mutex_unlock(&worker->lock);
      break;
    }
    item = worker->head;
    worker->head = item->next;
    if (worker->head == NULL)
      worker->tail = NULL;
    pthread_mutex_unlock(&worker->lock);

    current_queue = queue;
    item->block();
    current_queue = NULL;
    Block_release(item->block);
    free(item);

    /* The item's reference may be the last one. Then the queue object is
     * gone and only worker, which this thread frees, remains. */
    dispatch_release(queue);
    emu_busy_end();
  }

  pthread_mutex_destroy(&worker->lock);
  pthread_cond_destroy(&worker->wake);
  free(worker);
  return NULL;
}

dispatch_queue_t dispatch_queue_create(const char *label,
                                       dispatch_queue_attr_t attr) {
  dispatch_queue_t queue;
  queue_worker_t *worker;
  pthread_attr_t thread_attr;
  pthread_t thread;

  if (attr != DISPATCH_QUEUE_SERIAL)
    emu_fatal("dispatch_queue_create: only serial queues are emulated");
  worker = calloc(1, sizeof(*worker));
  if (worker == NULL)
    return NULL;
  pthread_mutex_init(&worker->lock, NULL);
  pthread_cond_init(&worker->wake, NULL);

  queue = emu_object_create(&emu_class_queue, sizeof(*queue));
  snprintf(queue->label, sizeof(queue->label), "%s",
           label != NULL ? label : "");
  queue->worker = worker;

  pthread_attr_init(&thread_attr);
  pthread_attr_setstacksize(&thread_attr, QUEUE_STACK_SIZE);
  pthread_attr_setdetachstate(&thread_attr, PTHREAD_CREATE_DETACHED);
  if (pthread_create(&thread, &thread_attr, run_queue, queue) != 0)
    emu_fatal("dispatch_queue_create: cannot start a thread for %s",
              queue->label);
  pthread_attr_destroy(&thread_attr);
  return queue;
}

/* Runs when the last reference is gone, so no block is queued: the thread
 * is idle or about to wait, and exits on the stop request. */
static void dispose_queue(void *object) {
  dispatch_queue_t queue = object;
  queue_worker_t *worker = queue->worker;

  pthread_mutex_lock(&worker->lock);
  worker->stop = true;
  pthread_cond_signal(&worker->wake);
  pthread_mutex_unlock(&worker->lock);
}

void dispatch_async(dispatch_queue_t queue, dispatch_block_t block) {
  queue_worker_t *worker;
  work_item_t *item;

  emu_object_check(queue, &emu_class_queue, "dispatch_async");
  if (block == NULL)
    emu_fatal("dispatch_async with a NULL block");
  item = malloc(sizeof(*item));
  if (item == NULL)
    emu_fatal("out of memory in dispatch_async");
  item->block = Block_copy(block);
  item->next = NULL;

  dispatch_retain(queue);
  emu_busy_begin();
  worker = queue->worker;
  pthread_mutex_lock(&worker->lock);
  if (worker->tail != NULL)
    worker->tail->next = item;
  else
    worker->head = item;
  worker->tail = item;
  pthread_cond_signal(&worker->wake);
  pthread_mutex_unlock(&worker->lock);
}

/* Data objects */

static void buffer_release(data_buffer_t *buffer) {
  if (atomic_fetch_sub(&buffer->refs, 1) == 1)
    free(buffer);
}

static dispatch_data_t data_alloc(size_t region_count) {
  dispatch_data_t data = emu_object_create(
      &emu_class_data, sizeof(*data) + region_count * sizeof(data->regions[0]));

  data->region_count = region_count;
  return data;
}

static void dispose_data(void *object) {
  dispatch_data_t data = object;
  size_t i;

  for (i = 0; i < data->region_count; i++)
    buffer_release(data->regions[i].buffer);
}

dispatch_data_t dispatch_data_create(const void *buffer, size_t size,
                                     dispatch_queue_t queue,
                                     dispatch_block_t destructor) {
  data_buffer_t *copy;
  dispatch_data_t data;

  (void)queue;
  if (destructor != DISPATCH_DATA_DESTRUCTOR_DEFAULT)
    emu_fatal("dispatch_data_create: only DISPATCH_DATA_DESTRUCTOR_DEFAULT "
              "is emulated");
  if (size == 0)
    return data_alloc(0);
  if (buffer == NULL)
    emu_fatal("dispatch_data_create: NULL buffer of %zu bytes", size);

  copy = malloc(sizeof(*copy) + size);
  if (copy == NULL)
    return NULL;
  atomic_init(&copy->refs, 1);
  copy->size = size;
  memcpy(copy->bytes, buffer, size);

  data = data_alloc(1);
  data->size = size;
  data->regions[0].buffer = copy;
  data->regions[0].offset = 0;
  data->regions[0].size = size;
  return data;
}

size_t dispatch_data_get_size(dispatch_data_t data) {
  emu_object_check(data, &emu_class_data, "dispatch_data_get_size");
  return data->size;
}

dispatch_data_t dispatch_data_create_concat(dispatch_data_t data1,
                                            dispatch_data_t data2) {
  dispatch_data_t joined;
  size_t i;

  emu_object_check(data1, &emu_class_data, "dispatch_data_create_concat");
  emu_object_check(data2, &emu_class_data, "dispatch_data_create_concat");
  joined = data_alloc(data1->region_count + data2->region_count);
  joined->size = data1->size + data2->size;
  for (i = 0; i < data1->region_count; i++)
    joined->regions[i] = data1->regions[i];
  for (i = 0; i < data2->region_count; i++)
    joined->regions[data1->region_count + i] = data2->regions[i];
  for (i = 0; i < joined->region_count; i++)
    atomic_fetch_add(&joined->regions[i].buffer->refs, 1);
  return joined;
}

bool dispatch_data_apply(dispatch_data_t data,
                         dispatch_data_applier_t applier) {
  size_t offset = 0;
  size_t i;

  emu_object_check(data, &emu_class_data, "dispatch_data_apply");
  for (i = 0; i < data->region_count; i++) {
    const data_region_t *source = &data->regions[i];
    dispatch_data_t region = data_alloc(1);
    bool go_on;

    /* Each region is passed as a data object of its own, released when the
     * applier returns, as the real call does. */
    region->size = source->size;
    region->regions[0] = *source;
    atomic_fetch_add(&source->buffer->refs, 1);
    go_on = applier(region, offset, source->buffer->bytes + source->offset,
                    source->size);
    dispatch_release(region);
    if (!go_on)
      return false;
    offset += source->size;
  }
  return true;
}

int emu_data_iovecs(dispatch_data_t data, size_t offset, struct iovec *iov,
                    int max) {
  int filled = 0;
  size_t i;

  for (i = 0; i < data->region_count && filled < max; i++) {
    const data_region_t *region = &data->regions[i];

    if (offset >= region->size) {
      offset -= region->size;
      continue;
    }
    iov[filled].iov_base = region->buffer->bytes + region->offset + offset;
    iov[filled].iov_len = region->size - offset;
    filled++;
    offset = 0;
  }
  return filled;
}
