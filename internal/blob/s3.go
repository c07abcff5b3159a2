package blob

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"sync"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
)

// DefaultS3PartSize is the multipart part size: the memory one upload
// holds, and the size up to which an object goes up in a single PUT.
const DefaultS3PartSize = 8 << 20

// minS3PartSize is S3's smallest part (all parts but the last).
const minS3PartSize = 5 << 20

// S3Options locate a bucket on an S3-compatible server.
type S3Options struct {
	Endpoint  string // host[:port]
	Bucket    string
	Prefix    string // prepended to every key; "" or ending in "/"
	Region    string // "" lets the client ask the server
	AccessKey string
	SecretKey string
	Insecure  bool  // plain HTTP instead of HTTPS
	PathStyle bool  // bucket in the path, not the host name
	PartSize  int64 // 0: DefaultS3PartSize
}

// S3 stores blobs as objects in one bucket. Puts stream: an object of at
// most one part is sent in one PUT, a larger one as a multipart upload
// that is aborted on any error, so a failed Put leaves nothing behind.
type S3 struct {
	core     *minio.Core
	bucket   string
	prefix   string
	partSize int
	parts    sync.Pool // *[]byte of partSize, reused across uploads
}

// NewS3 connects to the bucket and checks that it exists, so a wrong
// endpoint, credential or bucket name fails at startup.
func NewS3(ctx context.Context, o S3Options) (*S3, error) {
	if o.PartSize == 0 {
		o.PartSize = DefaultS3PartSize
	}
	if o.PartSize < minS3PartSize {
		return nil, fmt.Errorf("blob: S3 part size %d is below the 5 MiB S3 minimum", o.PartSize)
	}
	if o.Bucket == "" {
		return nil, errors.New("blob: S3 bucket name is empty")
	}
	lookup := minio.BucketLookupAuto
	if o.PathStyle {
		lookup = minio.BucketLookupPath
	}
	core, err := minio.NewCore(o.Endpoint, &minio.Options{
		Creds:        credentials.NewStaticV4(o.AccessKey, o.SecretKey, ""),
		Secure:       !o.Insecure,
		Region:       o.Region,
		BucketLookup: lookup,
	})
	if err != nil {
		return nil, fmt.Errorf("blob: S3 endpoint %q: %w", o.Endpoint, err)
	}
	ok, err := core.BucketExists(ctx, o.Bucket)
	if err != nil {
		return nil, fmt.Errorf("blob: S3 bucket %q at %s: %w", o.Bucket, o.Endpoint, err)
	}
	if !ok {
		return nil, fmt.Errorf("blob: S3 bucket %q does not exist at %s", o.Bucket, o.Endpoint)
	}
	s := &S3{core: core, bucket: o.Bucket, prefix: o.Prefix, partSize: int(o.PartSize)}
	s.parts.New = func() any { b := make([]byte, s.partSize); return &b }
	return s, nil
}

func (s *S3) object(key string) (string, error) {
	if err := checkKey(key); err != nil {
		return "", err
	}
	return s.prefix + key, nil
}

func (s *S3) Put(ctx context.Context, key string, r io.Reader, limit int64) (int64, error) {
	name, err := s.object(key)
	if err != nil {
		return 0, err
	}
	src := &limitedReader{r: r, left: limit, limit: limit > 0}
	bufp := s.parts.Get().(*[]byte)
	defer s.parts.Put(bufp)
	buf := *bufp
	n, err := io.ReadFull(src, buf)
	if err == io.EOF || err == io.ErrUnexpectedEOF {
		if _, err := s.core.PutObject(ctx, s.bucket, name, bytes.NewReader(buf[:n]), int64(n), "", "", minio.PutObjectOptions{}); err != nil {
			return 0, fmt.Errorf("blob: S3 put %q: %w", key, err)
		}
		return int64(n), nil
	}
	if err != nil {
		return 0, err
	}
	return s.putMultipart(ctx, name, src, buf)
}

// putMultipart uploads buf, already full, and the rest of src part by part.
func (s *S3) putMultipart(ctx context.Context, name string, src io.Reader, buf []byte) (size int64, err error) {
	uploadID, err := s.core.NewMultipartUpload(ctx, s.bucket, name, minio.PutObjectOptions{})
	if err != nil {
		return 0, fmt.Errorf("blob: S3 put %q: %w", name, err)
	}
	defer func() {
		if err != nil {
			// The caller's context may be what failed; the abort must still
			// reach the server or the parts stay stored.
			actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
			defer cancel()
			if aerr := s.core.AbortMultipartUpload(actx, s.bucket, name, uploadID); aerr != nil {
				err = errors.Join(err, fmt.Errorf("blob: S3 abort upload of %q: %w", name, aerr))
			}
		}
	}()
	var parts []minio.CompletePart
	n := len(buf)
	for {
		part, err := s.core.PutObjectPart(ctx, s.bucket, name, uploadID, len(parts)+1, bytes.NewReader(buf[:n]), int64(n), minio.PutObjectPartOptions{})
		if err != nil {
			return 0, fmt.Errorf("blob: S3 put %q part %d: %w", name, len(parts)+1, err)
		}
		parts = append(parts, minio.CompletePart{PartNumber: part.PartNumber, ETag: part.ETag})
		size += int64(n)
		var rerr error
		n, rerr = io.ReadFull(src, buf)
		if rerr == io.EOF {
			break
		}
		if rerr != nil && rerr != io.ErrUnexpectedEOF {
			return 0, rerr
		}
	}
	if _, err := s.core.CompleteMultipartUpload(ctx, s.bucket, name, uploadID, parts, minio.PutObjectOptions{}); err != nil {
		return 0, fmt.Errorf("blob: S3 complete upload of %q: %w", name, err)
	}
	return size, nil
}

func (s *S3) Open(ctx context.Context, key string) (io.ReadSeekCloser, int64, error) {
	name, err := s.object(key)
	if err != nil {
		return nil, 0, err
	}
	body, info, _, err := s.core.GetObject(ctx, s.bucket, name, minio.GetObjectOptions{})
	if isNoSuchKey(err) {
		return nil, 0, ErrNotFound
	}
	if err != nil {
		return nil, 0, fmt.Errorf("blob: S3 get %q: %w", key, err)
	}
	return &s3Reader{s: s, ctx: ctx, name: name, etag: info.ETag, size: info.Size, body: body}, info.Size, nil
}

func (s *S3) Delete(ctx context.Context, key string) error {
	name, err := s.object(key)
	if err != nil {
		return err
	}
	// S3 answers a delete of a missing key with success, as FS does.
	if err := s.core.RemoveObject(ctx, s.bucket, name, minio.RemoveObjectOptions{}); err != nil && !isNoSuchKey(err) {
		return fmt.Errorf("blob: S3 delete %q: %w", key, err)
	}
	return nil
}

func isNoSuchKey(err error) bool {
	if err == nil {
		return false
	}
	resp := minio.ToErrorResponse(err)
	return resp.Code == minio.NoSuchKey || resp.StatusCode == http.StatusNotFound && resp.Code != minio.NoSuchBucket
}

// errNegativeSeek is Seek's answer to a position before the start.
var errNegativeSeek = errors.New("blob: seek to a negative position")

// s3Reader reads one object version from an offset: the first GET's body
// serves sequential reads, a Seek drops it and the next Read asks for the
// range from the new offset. If-Match on the ETag keeps a concurrent
// overwrite from splicing two versions into one read.
type s3Reader struct {
	s      *S3
	ctx    context.Context
	name   string
	etag   string
	size   int64
	off    int64
	body   io.ReadCloser
	closed bool
}

func (r *s3Reader) Read(p []byte) (int, error) {
	if r.closed {
		return 0, os.ErrClosed
	}
	if r.off >= r.size {
		return 0, io.EOF
	}
	if r.body == nil {
		opts := minio.GetObjectOptions{}
		opts.Set("Range", fmt.Sprintf("bytes=%d-", r.off))
		if err := opts.SetMatchETag(r.etag); err != nil {
			return 0, err
		}
		body, _, _, err := r.s.core.GetObject(r.ctx, r.s.bucket, r.name, opts)
		if err != nil {
			return 0, fmt.Errorf("blob: S3 get %q from %d: %w", r.name, r.off, err)
		}
		r.body = body
	}
	n, err := r.body.Read(p)
	r.off += int64(n)
	if err == io.EOF && r.off < r.size {
		err = io.ErrUnexpectedEOF
	}
	return n, err
}

// ReadAt fetches exactly the range asked for, independent of the read
// position, as archive/zip wants for a central directory.
func (r *s3Reader) ReadAt(p []byte, off int64) (int, error) {
	if r.closed {
		return 0, os.ErrClosed
	}
	if off < 0 {
		return 0, errNegativeSeek
	}
	if len(p) == 0 {
		return 0, nil
	}
	if off >= r.size {
		return 0, io.EOF
	}
	want := min(int64(len(p)), r.size-off)
	opts := minio.GetObjectOptions{}
	if err := opts.SetRange(off, off+want-1); err != nil {
		return 0, err
	}
	if err := opts.SetMatchETag(r.etag); err != nil {
		return 0, err
	}
	body, _, _, err := r.s.core.GetObject(r.ctx, r.s.bucket, r.name, opts)
	if err != nil {
		return 0, fmt.Errorf("blob: S3 get %q at %d: %w", r.name, off, err)
	}
	defer body.Close()
	n, err := io.ReadFull(body, p[:want])
	if err != nil {
		return n, err
	}
	if want < int64(len(p)) {
		return n, io.EOF
	}
	return n, nil
}

func (r *s3Reader) Seek(offset int64, whence int) (int64, error) {
	if r.closed {
		return 0, os.ErrClosed
	}
	abs := offset
	switch whence {
	case io.SeekStart:
	case io.SeekCurrent:
		abs += r.off
	case io.SeekEnd:
		abs += r.size
	default:
		return 0, fmt.Errorf("blob: seek whence %d", whence)
	}
	if abs < 0 {
		return 0, errNegativeSeek
	}
	if abs != r.off && r.body != nil {
		r.body.Close()
		r.body = nil
	}
	r.off = abs
	return abs, nil
}

func (r *s3Reader) Close() error {
	if r.closed {
		return os.ErrClosed
	}
	r.closed = true
	if r.body != nil {
		return r.body.Close()
	}
	return nil
}
