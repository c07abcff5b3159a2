package config

import (
	"fmt"
	"net/url"
	"strconv"
	"strings"
)

// ObjectStore is GANTRY_OBJECT_STORE_URL parsed, plus the credentials.
//
//	s3://BUCKET[/PREFIX]?endpoint=HOST[:PORT]&region=R&insecure=true&path_style=true
//
// endpoint defaults to s3.amazonaws.com; region is asked of the server
// when omitted; insecure=true speaks plain HTTP instead of HTTPS;
// path_style=true puts the bucket in the path rather than the host name
// (the default picks per endpoint). Credentials come only from
// GANTRY_OBJECT_STORE_ACCESS_KEY and GANTRY_OBJECT_STORE_SECRET_KEY,
// never from the URL, so the URL can be logged.
type ObjectStore struct {
	Endpoint  string
	Bucket    string
	Prefix    string // "" or ending in "/"
	Region    string
	Insecure  bool
	PathStyle bool
	AccessKey string
	SecretKey string
}

// ParseObjectStoreURL checks raw and returns the store it names.
func ParseObjectStoreURL(raw, accessKey, secretKey string) (*ObjectStore, error) {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("config: object store URL %q: %s", redact(raw), fmt.Sprintf(format, args...))
	}
	u, err := url.Parse(raw)
	if err != nil {
		return nil, bad("%v", err)
	}
	if u.Scheme != "s3" {
		return nil, bad("the scheme must be s3://")
	}
	if u.User != nil {
		return nil, bad("credentials go in GANTRY_OBJECT_STORE_ACCESS_KEY and GANTRY_OBJECT_STORE_SECRET_KEY, not in the URL")
	}
	if u.Host == "" {
		return nil, bad("no bucket: s3://BUCKET[/PREFIX]?endpoint=HOST:PORT")
	}
	o := &ObjectStore{Bucket: u.Host, Endpoint: "s3.amazonaws.com", AccessKey: accessKey, SecretKey: secretKey}
	if p := strings.Trim(u.Path, "/"); p != "" {
		o.Prefix = p + "/"
	}
	for name, values := range u.Query() {
		v := values[len(values)-1]
		switch name {
		case "endpoint":
			if v == "" || strings.Contains(v, "/") {
				return nil, bad("endpoint must be HOST[:PORT], without a scheme or path")
			}
			o.Endpoint = v
		case "region":
			o.Region = v
		case "insecure", "path_style":
			b, err := strconv.ParseBool(v)
			if err != nil {
				return nil, bad("%s must be true or false", name)
			}
			if name == "insecure" {
				o.Insecure = b
			} else {
				o.PathStyle = b
			}
		default:
			return nil, bad("unknown parameter %q (known: endpoint, region, insecure, path_style)", name)
		}
	}
	if accessKey == "" || secretKey == "" {
		return nil, bad("GANTRY_OBJECT_STORE_ACCESS_KEY and GANTRY_OBJECT_STORE_SECRET_KEY must both be set")
	}
	return o, nil
}

// redact keeps a password out of an error message when someone does put
// credentials in the URL.
func redact(raw string) string {
	if u, err := url.Parse(raw); err == nil && u.User != nil {
		return u.Redacted()
	}
	return raw
}
