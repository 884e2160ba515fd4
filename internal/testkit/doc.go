// Package testkit holds the helpers the module's tests share: one manual
// [Clock], fixture loaders for a package's testdata directory ([Fixture],
// [FixtureJSON], [FixtureGlob]), the known-answer signature vectors of the
// module's testdata/signatures.json ([Vectors]) and a test context with a
// timeout ([Context]).
//
// It imports neither github.com/kommo-go/kommo nor its kommotest package,
// so the root package's internal tests can use it without an import cycle.
// [Clock] still satisfies kommo.Clock (Now and Sleep), and its Now method
// value fits every option that takes a func() time.Time.
package testkit
