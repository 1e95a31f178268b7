// Package startup is the seed's schedule for connecting at start-up: five
// tries, waiting 1, 2, 4, 8 and 16 s after each, then a try every 16 s in the
// background while the HTTP server answers and /readyz reports 503. The
// app's database and broker loops and the consumer's connect all follow it,
// so it is written once, here. Each says at error level that the start-up
// tries are used up once the fifth has failed.
package startup

import "time"

// Tries is how many tries start-up makes (the seed's five attempts); the
// tries after them go on in the background.
const Tries = 5

// Wait returns how long to wait after try (counted from 1) failed: 1 s
// after the first, twice as long after each further one up to 16 s, and
// 16 s after every try past Tries.
func Wait(try int) time.Duration {
	return time.Second << (min(max(try, 1), Tries) - 1)
}

// UsedUp reports whether the start-up tries are used up once try (counted
// from 1) has failed: every later try is a retry in the background.
func UsedUp(try int) bool { return try >= Tries }
