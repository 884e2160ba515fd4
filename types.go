package kommo

import "iter"

// MessageType is the type of a chat message.
type MessageType string

// Message types of the Chat API.
const (
	MessageTypeText     MessageType = "text"
	MessageTypePicture  MessageType = "picture"
	MessageTypeVideo    MessageType = "video"
	MessageTypeFile     MessageType = "file"
	MessageTypeVoice    MessageType = "voice"
	MessageTypeAudio    MessageType = "audio"
	MessageTypeSticker  MessageType = "sticker"
	MessageTypeLocation MessageType = "location"
	MessageTypeContact  MessageType = "contact"
)

// Location is a geographic point sent in a location message.
type Location struct {
	Lon float64 `json:"lon"`
	Lat float64 `json:"lat"`
}

// ContactCard is the contact shared in a contact message.
type ContactCard struct {
	Name  string `json:"name"`
	Phone string `json:"phone"`
}

// Ptr returns a pointer to v, for optional request fields.
func Ptr[T any](v T) *T { return &v }

// Collect drains an iterator such as History.All into a slice, stopping at
// the first error (returned with the items read before it).
func Collect[T any](seq iter.Seq2[T, error]) ([]T, error) {
	var out []T
	for v, err := range seq {
		if err != nil {
			return out, err
		}
		out = append(out, v)
	}
	return out, nil
}
