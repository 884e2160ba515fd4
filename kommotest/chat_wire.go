package kommotest

type wireProfile struct {
	Phone string `json:"phone,omitempty"`
	Email string `json:"email,omitempty"`
}

type wireUser struct {
	ID          string       `json:"id"`
	RefID       string       `json:"ref_id"`
	Name        string       `json:"name"`
	Avatar      string       `json:"avatar"`
	Profile     *wireProfile `json:"profile"`
	ProfileLink string       `json:"profile_link"`
}

type wireSourceRef struct {
	ExternalID string `json:"external_id"`
}

type wireLocation struct {
	Lon float64 `json:"lon"`
	Lat float64 `json:"lat"`
}

type wireContact struct {
	Name  string `json:"name"`
	Phone string `json:"phone"`
}

type wireDelivery struct {
	StatusCode int    `json:"status_code"`
	ErrorCode  int    `json:"error_code"`
	Error      string `json:"error"`
}

type wireMessage struct {
	Type           string        `json:"type"`
	Text           string        `json:"text"`
	Media          string        `json:"media"`
	Thumbnail      string        `json:"thumbnail"`
	FileName       string        `json:"file_name"`
	FileSize       int64         `json:"file_size"`
	StickerID      string        `json:"sticker_id"`
	MediaGroupID   string        `json:"media_group_id"`
	Location       *wireLocation `json:"location"`
	Contact        *wireContact  `json:"contact"`
	DeliveryStatus *wireDelivery `json:"delivery_status"`
}

type wireEmbedded struct {
	ID            string    `json:"id"`
	MsgID         string    `json:"msgid"`
	Type          string    `json:"type"`
	Text          string    `json:"text"`
	FileName      string    `json:"file_name"`
	FileSize      int64     `json:"file_size"`
	Timestamp     int64     `json:"timestamp"`
	MsecTimestamp int64     `json:"msec_timestamp"`
	Sender        *wireUser `json:"sender"`
}

type wirePayload struct {
	Timestamp         int64          `json:"timestamp"`
	MsecTimestamp     int64          `json:"msec_timestamp"`
	ConversationID    string         `json:"conversation_id"`
	ConversationRefID string         `json:"conversation_ref_id"`
	Silent            bool           `json:"silent"`
	Source            *wireSourceRef `json:"source"`
	Sender            *wireUser      `json:"sender"`
	Receiver          *wireUser      `json:"receiver"`
	ID                string         `json:"id"`
	MsgID             string         `json:"msgid"`
	Message           *wireMessage   `json:"message"`
	ReplyTo           *struct {
		Message *wireEmbedded `json:"message"`
	} `json:"reply_to"`
}

type newMessageResult struct {
	ConversationID string  `json:"conversation_id"`
	SenderID       string  `json:"sender_id"`
	ReceiverID     *string `json:"receiver_id"`
	MsgID          string  `json:"msgid"`
	RefID          string  `json:"ref_id"`
}

type chatUserOut struct {
	ID       string `json:"id"`
	ClientID string `json:"client_id,omitempty"`
	Name     string `json:"name"`
	Avatar   string `json:"avatar"`
	Phone    string `json:"phone,omitempty"`
	Email    string `json:"email,omitempty"`
}

type historyUser struct {
	ID       string `json:"id"`
	Name     string `json:"name,omitempty"`
	ClientID string `json:"client_id,omitempty"`
	Avatar   string `json:"avatar,omitempty"`
	Phone    string `json:"phone,omitempty"`
	Email    string `json:"email,omitempty"`
}

type historyMessage struct {
	ID           string        `json:"id"`
	ClientID     string        `json:"client_id,omitempty"`
	Type         string        `json:"type"`
	Text         string        `json:"text"`
	Media        string        `json:"media,omitempty"`
	Thumbnail    string        `json:"thumbnail,omitempty"`
	FileName     string        `json:"file_name,omitempty"`
	FileSize     int64         `json:"file_size,omitempty"`
	MediaGroupID string        `json:"media_group_id,omitempty"`
	Location     *wireLocation `json:"location,omitempty"`
	Contact      *wireContact  `json:"contact,omitempty"`
	// ReplyTo is the quoted message, in the nested form.
	ReplyTo *historyReplyTo `json:"reply_to,omitempty"`
}

type historyReplyTo struct {
	Message historyEmbedded `json:"message"`
}

// historyEmbedded is a quoted message as history items carry it.
type historyEmbedded struct {
	ID            string       `json:"id,omitempty"`
	MsgID         string       `json:"msgid,omitempty"`
	Type          string       `json:"type,omitempty"`
	Text          string       `json:"text,omitempty"`
	Media         string       `json:"media,omitempty"`
	FileName      string       `json:"file_name,omitempty"`
	FileSize      int64        `json:"file_size,omitempty"`
	Timestamp     int64        `json:"timestamp,omitempty"`
	MsecTimestamp int64        `json:"msec_timestamp,omitempty"`
	Sender        *historyUser `json:"sender,omitempty"`
}

type historyItem struct {
	Timestamp     int64          `json:"timestamp"`
	MsecTimestamp int64          `json:"msec_timestamp"`
	Sender        historyUser    `json:"sender"`
	Receiver      *historyUser   `json:"receiver,omitempty"`
	Message       historyMessage `json:"message"`
}

func toHistoryUser(p Participant) historyUser {
	return historyUser{ID: p.ID, Name: p.Name, ClientID: p.ClientID, Avatar: p.Avatar, Phone: p.Phone, Email: p.Email}
}
