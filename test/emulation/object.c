/*
 * object.c: reference counting of every emulated nw_* and dispatch object,
 * and the leak check that runs when the process exits.
 *
 * Constraint: a misuse must fail loudly and at once. An over-release aborts
 * with the object's type on stderr, and live objects at exit make the
 * process exit with NW_EMULATION_LEAK_EXIT_CODE. Released objects stay
 * readable for a while (the quarantine) so that a late release or use of
 * one is recognised instead of touching reused memory.
 */
#include "internal.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* Released objects kept poisoned before their memory is freed. A release or
 * use of an object released longer ago than this many releases is not
 * detected, because its memory may have been reused. */
#define QUARANTINE_SIZE 16384

/* Time the leak check waits for queues and connections to go idle. */
#define EXIT_IDLE_TIMEOUT_MS 2000

/* Objects listed one by one in a leak report; the rest are only counted. */
#define REPORT_MAX_OBJECTS 32

static struct {
  pthread_mutex_t lock;
  emu_object_t *live;
  size_t live_count;
  emu_object_t *quarantine[QUARANTINE_SIZE];
  size_t quarantine_next;
} registry = {.lock = PTHREAD_MUTEX_INITIALIZER};

static struct {
  pthread_mutex_t lock;
  pthread_cond_t idle;
  unsigned long busy;
} activity = {.lock = PTHREAD_MUTEX_INITIALIZER,
              .idle = PTHREAD_COND_INITIALIZER};

void emu_fatal(const char *format, ...) {
  va_list args;

  fputs("nw-emulation: ", stderr);
  va_start(args, format);
  vfprintf(stderr, format, args);
  va_end(args);
  fputc('\n', stderr);
  fflush(stderr);
  abort();
}

void *emu_object_create(const emu_class_t *cls, size_t size) {
  emu_object_t *object = calloc(1, size);

  if (object == NULL)
    emu_fatal("out of memory creating a %s", cls->name);
  object->magic = EMU_MAGIC_LIVE;
  object->cls = cls;
  atomic_init(&object->refs, 1);

  pthread_mutex_lock(&registry.lock);
  object->next = registry.live;
  if (registry.live != NULL)
    registry.live->prev = object;
  registry.live = object;
  registry.live_count++;
  pthread_mutex_unlock(&registry.lock);
  return object;
}

static const char *family_release_name(emu_family_t family) {
  switch (family) {
  case EMU_FAMILY_NW:
    return "nw_release";
  case EMU_FAMILY_SEC:
    return "sec_release";
  default:
    return "dispatch_release";
  }
}

/* Aborts unless object is a live object of family. */
static void check_family(const emu_object_t *object, emu_family_t family,
                         const char *function) {
  if (object == NULL)
    emu_fatal("%s(NULL)", function);
  if (object->magic == EMU_MAGIC_DEAD)
    emu_fatal("over-release: %s on a released %s (%p)", function,
              object->cls->name, (const void *)object);
  if (object->magic != EMU_MAGIC_LIVE)
    emu_fatal("%s on %p, which is no emulated object", function,
              (const void *)object);
  if (object->cls->family != family)
    emu_fatal("%s on a %s, which needs %s", function, object->cls->name,
              family_release_name(object->cls->family));
}

void emu_object_check(const void *pointer, const emu_class_t *cls,
                      const char *function) {
  const emu_object_t *object = pointer;

  check_family(object, cls->family, function);
  if (object->cls != cls)
    emu_fatal("%s: expected a %s, got a %s", function, cls->name,
              object->cls->name);
}

void emu_object_retain(void *pointer, emu_family_t family,
                       const char *function) {
  emu_object_t *object = pointer;

  check_family(object, family, function);
  if (object->immortal)
    return;
  if (atomic_fetch_add(&object->refs, 1) <= 0)
    emu_fatal("%s on a released %s (%p)", function, object->cls->name,
              (void *)object);
}

/* Unlinks a released object, poisons it and frees the object that leaves
 * the quarantine. */
static void retire(emu_object_t *object) {
  emu_object_t *evicted;

  pthread_mutex_lock(&registry.lock);
  if (object->prev != NULL)
    object->prev->next = object->next;
  else
    registry.live = object->next;
  if (object->next != NULL)
    object->next->prev = object->prev;
  registry.live_count--;

  object->magic = EMU_MAGIC_DEAD;
  evicted = registry.quarantine[registry.quarantine_next];
  registry.quarantine[registry.quarantine_next] = object;
  registry.quarantine_next = (registry.quarantine_next + 1) % QUARANTINE_SIZE;
  pthread_mutex_unlock(&registry.lock);
  free(evicted);
}

void emu_object_release(void *pointer, emu_family_t family,
                        const char *function) {
  emu_object_t *object = pointer;
  long left;

  check_family(object, family, function);
  if (object->immortal)
    return;
  left = atomic_fetch_sub(&object->refs, 1) - 1;
  if (left < 0)
    emu_fatal("over-release: %s on a released %s (%p)", function,
              object->cls->name, (void *)object);
  if (left > 0)
    return;

  /* dispose runs before the object is unlinked, so the objects it releases
   * are counted until they are released too. */
  if (object->cls->dispose != NULL)
    object->cls->dispose(object);
  retire(object);
}

void *nw_retain(void *object) {
  emu_object_retain(object, EMU_FAMILY_NW, "nw_retain");
  return object;
}

void nw_release(void *object) {
  emu_object_release(object, EMU_FAMILY_NW, "nw_release");
}

void *sec_retain(void *object) {
  emu_object_retain(object, EMU_FAMILY_SEC, "sec_retain");
  return object;
}

void sec_release(void *object) {
  emu_object_release(object, EMU_FAMILY_SEC, "sec_release");
}

void emu_busy_begin(void) {
  pthread_mutex_lock(&activity.lock);
  activity.busy++;
  pthread_mutex_unlock(&activity.lock);
}

void emu_busy_end(void) {
  pthread_mutex_lock(&activity.lock);
  if (activity.busy == 0)
    emu_fatal("activity count below zero");
  if (--activity.busy == 0)
    pthread_cond_broadcast(&activity.idle);
  pthread_mutex_unlock(&activity.lock);
}

int nw_emulation_wait_idle(unsigned timeout_ms) {
  struct timespec deadline;
  int result = 0;

  clock_gettime(CLOCK_REALTIME, &deadline);
  deadline.tv_sec += timeout_ms / 1000;
  deadline.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
  if (deadline.tv_nsec >= 1000000000L) {
    deadline.tv_sec++;
    deadline.tv_nsec -= 1000000000L;
  }

  pthread_mutex_lock(&activity.lock);
  while (activity.busy > 0 && result == 0) {
    if (pthread_cond_timedwait(&activity.idle, &activity.lock, &deadline) != 0)
      result = activity.busy > 0 ? -1 : 0;
  }
  pthread_mutex_unlock(&activity.lock);
  return result;
}

size_t nw_emulation_live_objects(void) {
  size_t count;

  pthread_mutex_lock(&registry.lock);
  count = registry.live_count;
  pthread_mutex_unlock(&registry.lock);
  return count;
}

void nw_emulation_print_live_objects(FILE *stream) {
  const emu_class_t *classes[] = {&emu_class_connection,
                                  &emu_class_endpoint,
                                  &emu_class_parameters,
                                  &emu_class_protocol_stack,
                                  &emu_class_protocol_options,
                                  &emu_class_path,
                                  &emu_class_error,
                                  &emu_class_content_context,
                                  &emu_class_queue,
                                  &emu_class_data};
  size_t listed = 0;
  size_t i;
  emu_object_t *object;

  pthread_mutex_lock(&registry.lock);
  for (i = 0; i < sizeof(classes) / sizeof(classes[0]); i++) {
    size_t count = 0;

    for (object = registry.live; object != NULL; object = object->next) {
      if (object->cls == classes[i])
        count++;
    }
    if (count > 0)
      fprintf(stream, "  %s: %zu alive\n", classes[i]->name, count);
  }
  for (object = registry.live; object != NULL && listed < REPORT_MAX_OBJECTS;
       object = object->next, listed++) {
    fprintf(stream, "    %s %p with %ld references\n", object->cls->name,
            (void *)object, atomic_load(&object->refs));
  }
  pthread_mutex_unlock(&registry.lock);
}

static bool leak_check_disabled(void) {
  const char *setting = getenv(NW_EMULATION_LEAK_CHECK_ENV);

  return setting != NULL &&
         (strcmp(setting, "off") == 0 || strcmp(setting, "0") == 0);
}

/* Runs at exit, after Node's environment cleanup hooks, which close every
 * connection of the addon. Live objects then are leaks: the exit status is
 * replaced so that the test run fails even when every test passed. */
static void check_leaks_at_exit(void) {
  size_t live;

  if (leak_check_disabled())
    return;
  if (nw_emulation_wait_idle(EXIT_IDLE_TIMEOUT_MS) != 0)
    fprintf(stderr,
            "nw-emulation: queues or connections still busy at exit "
            "after %d ms\n",
            EXIT_IDLE_TIMEOUT_MS);
  live = nw_emulation_live_objects();
  if (live == 0)
    return;

  fprintf(stderr,
          "nw-emulation: leak check failed: %zu objects alive at exit\n", live);
  nw_emulation_print_live_objects(stderr);
  fprintf(stderr,
          "nw-emulation: a process that exits with connections open on "
          "purpose sets %s=off\n",
          NW_EMULATION_LEAK_CHECK_ENV);
  fflush(stderr);
  _exit(NW_EMULATION_LEAK_EXIT_CODE);
}

__attribute__((constructor)) static void register_leak_check(void) {
  atexit(check_leaks_at_exit);
}
