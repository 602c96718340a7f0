// Package wstest is a minimal WebSocket client for the SDK's tests and examples: it connects
// to wshub, reads text frames and close codes. The SDK itself is a REST client and never
// uses it; it exists because Go's standard library has no WebSocket client.
package wstest

import (
	"bufio"
	"crypto/rand"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"time"
)

// Conn is one WebSocket connection to wshub.
type Conn struct {
	conn   net.Conn
	reader *bufio.Reader
	// ClientID is the id wshub's welcome frame gave this connection.
	ClientID string
}

// Frame is a frame wshub pushes.
type Frame struct {
	MessageID  string          `json:"messageId"`
	SendUserID string          `json:"sendUserId"`
	Code       int             `json:"code"`
	Msg        string          `json:"msg"`
	Data       json.RawMessage `json:"data"`
}

// ClosedError is a close frame from the server.
type ClosedError struct{ Code int }

func (e *ClosedError) Error() string { return fmt.Sprintf("closed with %d", e.Code) }

// Dial connects to baseURL's /ws as a client of systemID and reads the welcome frame.
func Dial(baseURL, systemID string) (*Conn, error) {
	base, err := url.Parse(baseURL)
	if err != nil {
		return nil, err
	}
	conn, err := net.DialTimeout("tcp", base.Host, 5*time.Second)
	if err != nil {
		return nil, err
	}
	key := make([]byte, 16)
	if _, err := rand.Read(key); err != nil {
		conn.Close()
		return nil, err
	}
	request, err := http.NewRequest(http.MethodGet, "http://"+base.Host+"/ws?systemId="+url.QueryEscape(systemID), nil)
	if err != nil {
		conn.Close()
		return nil, err
	}
	request.Header.Set("Upgrade", "websocket")
	request.Header.Set("Connection", "Upgrade")
	request.Header.Set("Sec-WebSocket-Key", base64.StdEncoding.EncodeToString(key))
	request.Header.Set("Sec-WebSocket-Version", "13")
	if err := request.Write(conn); err != nil {
		conn.Close()
		return nil, err
	}
	c := &Conn{conn: conn, reader: bufio.NewReader(conn)}
	response, err := http.ReadResponse(c.reader, request)
	if err != nil {
		conn.Close()
		return nil, err
	}
	if response.StatusCode != http.StatusSwitchingProtocols {
		conn.Close()
		return nil, fmt.Errorf("upgrade refused: %s", response.Status)
	}
	var welcome struct {
		Code int    `json:"code"`
		Msg  string `json:"msg"`
		Data struct {
			ClientID string `json:"clientId"`
		} `json:"data"`
	}
	text, err := c.ReadText(5 * time.Second)
	if err == nil {
		err = json.Unmarshal(text, &welcome)
	}
	if err == nil && welcome.Code != 0 {
		err = fmt.Errorf("refused: %d %s", welcome.Code, welcome.Msg)
	}
	if err != nil {
		conn.Close()
		return nil, err
	}
	c.ClientID = welcome.Data.ClientID
	return c, nil
}

// ReadFrame reads the next pushed frame.
func (c *Conn) ReadFrame(timeout time.Duration) (Frame, error) {
	var frame Frame
	text, err := c.ReadText(timeout)
	if err == nil {
		err = json.Unmarshal(text, &frame)
	}
	return frame, err
}

// ReadText reads the next text frame, skipping pings; a close frame is a *ClosedError.
func (c *Conn) ReadText(timeout time.Duration) ([]byte, error) {
	if err := c.conn.SetReadDeadline(time.Now().Add(timeout)); err != nil {
		return nil, err
	}
	for {
		var head [2]byte
		if _, err := io.ReadFull(c.reader, head[:]); err != nil {
			return nil, err
		}
		opcode := head[0] & 0x0f
		length := uint64(head[1] & 0x7f)
		switch length {
		case 126:
			var ext [2]byte
			if _, err := io.ReadFull(c.reader, ext[:]); err != nil {
				return nil, err
			}
			length = uint64(binary.BigEndian.Uint16(ext[:]))
		case 127:
			var ext [8]byte
			if _, err := io.ReadFull(c.reader, ext[:]); err != nil {
				return nil, err
			}
			length = binary.BigEndian.Uint64(ext[:])
		}
		payload := make([]byte, length)
		if _, err := io.ReadFull(c.reader, payload); err != nil {
			return nil, err
		}
		switch opcode {
		case 0x1:
			return payload, nil
		case 0x8:
			code := 1005
			if len(payload) >= 2 {
				code = int(binary.BigEndian.Uint16(payload[:2]))
			}
			return nil, &ClosedError{Code: code}
		}
	}
}

// Close drops the TCP connection.
func (c *Conn) Close() error { return c.conn.Close() }
