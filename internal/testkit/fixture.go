package testkit

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
)

// FixtureDir is the directory, relative to the package under test (the
// working directory of its tests), that Fixture, FixtureJSON and
// FixtureGlob read from.
const FixtureDir = "testdata"

// Fixture returns the contents of the file at the joined path under the
// calling package's testdata directory, failing the test if it cannot be
// read. The path elements are joined with filepath.Join, so a test outside
// the module root reaches the root package's fixtures with ".." elements.
func Fixture(t testing.TB, path ...string) []byte {
	t.Helper()
	name := fixturePath(path)
	b, err := os.ReadFile(name)
	if err != nil {
		t.Fatalf("testkit: fixture: %v", err)
		return nil
	}
	return b
}

// FixtureJSON decodes the JSON fixture at the joined path under testdata
// into v (a pointer), failing the test if it cannot be read or decoded.
func FixtureJSON(t testing.TB, v any, path ...string) {
	t.Helper()
	b := Fixture(t, path...)
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("testkit: fixture %s: %v", fixturePath(path), err)
	}
}

// FixtureGlob returns the files under testdata matching the joined pattern
// (filepath.Match syntax), as paths relative to testdata that Fixture
// accepts, in lexical order. No match is an empty result, not a failure; a
// malformed pattern fails the test.
func FixtureGlob(t testing.TB, pattern ...string) []string {
	t.Helper()
	matches, err := filepath.Glob(fixturePath(pattern))
	if err != nil {
		t.Fatalf("testkit: fixture glob %s: %v", fixturePath(pattern), err)
		return nil
	}
	out := make([]string, 0, len(matches))
	for _, m := range matches {
		rel, err := filepath.Rel(FixtureDir, m)
		if err != nil {
			t.Fatalf("testkit: fixture glob: %v", err)
			return nil
		}
		out = append(out, rel)
	}
	return out
}

func fixturePath(path []string) string {
	return filepath.Join(append([]string{FixtureDir}, path...)...)
}
