package kommo

import (
	"crypto/hmac"
	"crypto/md5"
	"crypto/sha1"
	"encoding/hex"
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/kommo-go/kommo/internal/chatsign"
	"github.com/kommo-go/kommo/internal/testkit"
)

var benchSink string

// BenchmarkSign measures Signer.Sign on a real request; baseline does only
// the MD5, the HMAC-SHA1 and the hex encoding of the same bytes, the
// physical floor of Chat API signing.
func BenchmarkSign(b *testing.B) {
	const secret = "f2d7f8704eff95087ed45b23ba99c0b5aac8278e"
	const path = "/v2/origin/custom/344a5002-f8ca-454d-af3d-396180102ac7_52e591f7-c98f-4255-8495-827210138c81"
	date := time.Date(2021, 12, 16, 13, 15, 29, 0, time.UTC)
	for _, size := range []int{1 << 10, 64 << 10} {
		body := make([]byte, size)
		for i := range body {
			body[i] = 'a' + byte(i%26)
		}
		name := strconv.Itoa(size>>10) + "KiB"
		b.Run("sdk/"+name, func(b *testing.B) {
			s := NewSigner(secret, WithSignerClock(testkit.NewClock(date)))
			req, _ := http.NewRequest(http.MethodPost, "https://amojo.kommo.com"+path, nil)
			b.SetBytes(int64(size))
			b.ReportAllocs()
			for b.Loop() {
				delete(req.Header, "Date")
				if err := s.Sign(req, body); err != nil {
					b.Fatal(err)
				}
			}
			benchSink = req.Header.Get("X-Signature")
		})
		b.Run("baseline/"+name, func(b *testing.B) {
			d := date.Format(chatsign.DateFormat)
			b.SetBytes(int64(size))
			b.ReportAllocs()
			for b.Loop() {
				sum := md5.Sum(body)
				md5hex := hex.EncodeToString(sum[:])
				mac := hmac.New(sha1.New, []byte(secret))
				mac.Write([]byte("POST\n" + md5hex + "\napplication/json\n" + d + "\n" + path))
				benchSink = hex.EncodeToString(mac.Sum(nil))
			}
		})
	}
}
