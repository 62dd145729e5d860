package testutil

import (
	"testing"

	"github.com/portico-gw/portico/internal/testutil/testredis"
)

// Redis is a real redis-server started for one test (see testredis).
type Redis = testredis.Redis

// StartRedis starts redis-server on a free loopback port for one test.
func StartRedis(t testing.TB) *Redis { return testredis.Start(t) }

// RequireBinary returns the path of a program the tests need; missing, it
// fails the test under CI and skips it elsewhere.
func RequireBinary(t testing.TB, name, debianPackage string) string {
	return testredis.RequireBinary(t, name, debianPackage)
}
