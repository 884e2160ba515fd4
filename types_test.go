package kommo

import (
	"errors"
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestCollect(t *testing.T) {
	boom := errors.New("boom")
	seq := func(yield func(int, error) bool) {
		for i := 1; i <= 3; i++ {
			if !yield(i, nil) {
				return
			}
		}
		if !yield(0, boom) {
			return
		}
		panic("must not be reached: Collect stops at the first error")
	}
	got, err := Collect(seq)
	assert.ErrorIs(t, err, boom)
	assert.Equal(t, []int{1, 2, 3}, got)

	strs, err := Collect(func(yield func(string, error) bool) { yield("a", nil) })
	assert.NoError(t, err)
	assert.Equal(t, []string{"a"}, strs)
	assert.Equal(t, 5, *Ptr(5))
}
