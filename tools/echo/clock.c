// SPDX-License-Identifier: Apache-2.0
#include <time.h>

#include "clock.h"

int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int ms_until(int64_t deadline)
{
	int64_t left = deadline - now_ms();

	if (left < 0)
		return 0;
	return left > 0x7fffffff ? 0x7fffffff : (int)left;
}
