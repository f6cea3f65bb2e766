/*
 * Answers queued for peers, counted in bytes: an ack or a snapshot handed
 * to ZeroMQ stays in memory until its peer reads it (or goes), and a crowd
 * of peers that ask and never read would otherwise hold the daemon's
 * memory for it. Each answer is handed over with zmq_msg_init_data(), whose
 * free function ZeroMQ calls (from its I/O thread) once the bytes are
 * written to the socket or dropped: the count is exact.
 */
#include <errno.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

#include "indicatord.h"
#include "xmalloc.h"

static _Atomic uint64_t queued;

static void
answer_free(void *data, void *hint)
{
	atomic_fetch_sub(&queued, (uint64_t)(uintptr_t)hint);
	free(data);
}

uint64_t
budget_answers_queued(void)
{
	return atomic_load(&queued);
}

bool
budget_answers_room(uint64_t limit)
{
	return atomic_load(&queued) < limit;
}

int
budget_answer(void *sock, const void *id, size_t idlen, void *buf, size_t len,
    uint64_t limit)
{
	zmq_msg_t msg;

	if (atomic_load(&queued) + len > limit) {
		free(buf);
		return 1;
	}
	if (zmq_send(sock, id, idlen, ZMQ_SNDMORE | ZMQ_DONTWAIT) == -1) {
		free(buf);
		return -1;
	}
	atomic_fetch_add(&queued, (uint64_t)len);
	if (zmq_msg_init_data(
		&msg, buf, len, answer_free, (void *)(uintptr_t)len) == -1) {
		answer_free(buf, (void *)(uintptr_t)len);
		return -1;
	}
	if (zmq_msg_send(&msg, sock, ZMQ_DONTWAIT) == -1) {
		int e = errno;

		zmq_msg_close(&msg); /* frees buf */
		errno = e;
		return -1;
	}
	return 0;
}
