package isapi

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
)

// DeviceStatus is a camera's state as the gateway reports it.
type DeviceStatus string

// Known statuses; others are passed through as the gateway wrote them.
const (
	DeviceOnline  DeviceStatus = "online"
	DeviceOffline DeviceStatus = "offline"
	DeviceSleep   DeviceStatus = "sleep"
)

// Device is a camera attached to the gateway. Only DevIndex is confirmed
// on real gateways; the other fields may be empty.
type Device struct {
	DevIndex string
	Name     string
	Status   DeviceStatus
	Model    string
	Protocol string
	Type     string
	Channels int // videoChannelNum, 0 when not reported
}

// DeviceListQuery selects a page of deviceList.
type DeviceListQuery struct {
	Position  int // 0-based index of the first device
	MaxResult int // page size (the gateway may cap it); default 100
	Statuses  []DeviceStatus
	SearchID  string
}

// DeviceListPage is one page of deviceList.
type DeviceListPage struct {
	Devices      []Device
	NumOfMatches int
	TotalMatches int // -1 when the gateway did not say
	More         bool
	// Skipped counts entries without a devIndex (unusable, left out).
	Skipped int
}

const pathDeviceList = "/ISAPI/ContentMgmt/DeviceMgmt/deviceList"

type wireDevice struct {
	DevIndex        string  `json:"devIndex"`
	DevName         string  `json:"devName"`
	DevType         string  `json:"devType"`
	DevMode         string  `json:"devMode"`
	Model           string  `json:"model"`
	ProtocolType    string  `json:"protocolType"`
	DevStatus       string  `json:"devStatus"`
	Status          string  `json:"status"`
	VideoChannelNum flexInt `json:"videoChannelNum"`
}

type wireDeviceList struct {
	SearchResult *struct {
		ResponseStatusStrg string   `json:"responseStatusStrg"`
		NumOfMatches       *flexInt `json:"numOfMatches"`
		TotalMatches       *flexInt `json:"totalMatches"`
		MatchList          []struct {
			Device *wireDevice `json:"Device"`
		} `json:"MatchList"`
	} `json:"SearchResult"`
}

func (w *wireDeviceList) page() (*DeviceListPage, error) {
	sr := w.SearchResult
	if sr == nil {
		return nil, errors.New("no SearchResult")
	}
	p := &DeviceListPage{TotalMatches: -1, More: sr.ResponseStatusStrg == "MORE"}
	for _, m := range sr.MatchList {
		d := m.Device
		if d == nil || d.DevIndex == "" {
			p.Skipped++
			continue
		}
		dev := Device{
			DevIndex: d.DevIndex, Name: d.DevName, Status: DeviceStatus(d.DevStatus),
			Model: d.DevMode, Protocol: d.ProtocolType, Type: d.DevType, Channels: d.VideoChannelNum.Int(),
		}
		if dev.Model == "" {
			dev.Model = d.Model
		}
		if dev.Status == "" {
			dev.Status = DeviceStatus(d.Status)
		}
		p.Devices = append(p.Devices, dev)
	}
	p.NumOfMatches = len(sr.MatchList)
	if sr.NumOfMatches != nil {
		p.NumOfMatches = sr.NumOfMatches.Int()
	}
	if sr.TotalMatches != nil {
		p.TotalMatches = sr.TotalMatches.Int()
	}
	return p, nil
}

// DeviceList fetches one page of attached devices.
func (c *Client) DeviceList(ctx context.Context, q DeviceListQuery) (*DeviceListPage, error) {
	if q.MaxResult <= 0 {
		q.MaxResult = 100
	}
	sd := map[string]any{"searchID": q.SearchID, "position": q.Position, "maxResult": q.MaxResult}
	if sd["searchID"] == "" {
		sd["searchID"] = "mediagw"
	}
	if len(q.Statuses) > 0 {
		sd["Filter"] = map[string]any{"devStatus": q.Statuses}
	}
	r := request{method: http.MethodPost, path: pathDeviceList}
	var out wireDeviceList
	if _, err := c.do(ctx, r, map[string]any{"SearchDescription": sd}, &out); err != nil {
		return nil, err
	}
	p, err := out.page()
	if err != nil {
		return nil, &MalformedResponseError{Method: r.method, Path: r.path, HTTPStatus: http.StatusOK, ContentType: "application/json", Err: err}
	}
	return p, nil
}

// AllDevices pages through deviceList. Devices that move between pages
// while it pages (additions, deletions) may be missed or seen twice; it
// drops duplicates.
func (c *Client) AllDevices(ctx context.Context, statuses ...DeviceStatus) ([]Device, error) {
	var all []Device
	seen := map[string]bool{}
	pos := 0
	for range 10000 { // bound against a gateway that never says "done"
		p, err := c.DeviceList(ctx, DeviceListQuery{Position: pos, MaxResult: 100, Statuses: statuses})
		if err != nil {
			return nil, err
		}
		for _, d := range p.Devices {
			if !seen[d.DevIndex] {
				seen[d.DevIndex] = true
				all = append(all, d)
			}
		}
		n := len(p.Devices) + p.Skipped
		pos += n
		if n == 0 || (p.TotalMatches >= 0 && pos >= p.TotalMatches) || (p.TotalMatches < 0 && !p.More) {
			return all, nil
		}
	}
	return nil, fmt.Errorf("isapi: deviceList: gave up after 10000 pages")
}

// Channel is a video channel of a camera.
type Channel struct {
	ID      int
	Name    string
	Enabled bool
}

const pathChannelInfo = "/ISAPI/ContentMgmt/DeviceMgmt/channelInfo"

// Channels lists a camera's video channels.
func (c *Client) Channels(ctx context.Context, devIndex string) ([]Channel, error) {
	var out struct {
		ChannelInfo *struct {
			VideoChannel []struct {
				Channel *struct {
					ID      *flexInt  `json:"id"`
					Name    string    `json:"name"`
					Enabled *flexBool `json:"enabled"`
				} `json:"Channel"`
			} `json:"VideoChannel"`
		} `json:"ChannelInfo"`
	}
	r := request{method: http.MethodGet, path: pathChannelInfo, query: url.Values{"devIndex": {devIndex}}}
	if _, err := c.do(ctx, r, nil, &out); err != nil {
		return nil, err
	}
	if out.ChannelInfo == nil {
		return nil, &MalformedResponseError{Method: r.method, Path: r.path, HTTPStatus: http.StatusOK, Err: errors.New("no ChannelInfo")}
	}
	var chans []Channel
	for _, v := range out.ChannelInfo.VideoChannel {
		if v.Channel == nil || v.Channel.ID == nil {
			continue
		}
		ch := Channel{ID: v.Channel.ID.Int(), Name: v.Channel.Name, Enabled: true}
		if v.Channel.Enabled != nil {
			ch.Enabled = bool(*v.Channel.Enabled)
		}
		chans = append(chans, ch)
	}
	return chans, nil
}

// StreamType selects the main or sub stream of a channel.
type StreamType string

// Stream types.
const (
	StreamMain StreamType = "main"
	StreamSub  StreamType = "sub"
)

const pathStreamMedia = "/ISAPI/System/streamMedia"

// StreamURL asks the gateway for the live RTSP URL of a channel. The URL
// carries no credentials: RTSP uses the gateway's own user and password.
func (c *Client) StreamURL(ctx context.Context, devIndex string, channelID int, st StreamType) (string, error) {
	if st == "" {
		st = StreamMain
	}
	in := map[string]any{"StreamInfo": map[string]any{
		"id": strconv.Itoa(channelID), "streamType": st, "method": "preview",
	}}
	var out struct {
		MediaAccessInfo *struct {
			URL string `json:"URL"`
		} `json:"MediaAccessInfo"`
	}
	r := request{method: http.MethodPost, path: pathStreamMedia, query: url.Values{"devIndex": {devIndex}}}
	if _, err := c.do(ctx, r, in, &out); err != nil {
		return "", err
	}
	bad := func(why string) error {
		return &MalformedResponseError{Method: r.method, Path: r.path, HTTPStatus: http.StatusOK, Err: errors.New(why)}
	}
	if out.MediaAccessInfo == nil || out.MediaAccessInfo.URL == "" {
		return "", bad("no MediaAccessInfo.URL")
	}
	u, err := url.Parse(out.MediaAccessInfo.URL)
	if err != nil || (u.Scheme != "rtsp" && u.Scheme != "rtsps") || u.Host == "" {
		return "", bad("MediaAccessInfo.URL is not an rtsp:// URL")
	}
	u.User = nil // never hand credentials around inside URLs
	return u.String(), nil
}
