package s3

import (
	"context"
	"errors"
	"fmt"
	"net"

	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"

	"github.com/artifactstore/artifact-store/pkg/storage"
)

// mapErr turns an SDK error into one that wraps the SPI's sentinels:
//
//	NoSuchKey, NotFound, 404                           ErrNotFound
//	InvalidRange, 416                                  ErrInvalidRange
//	NoSuchBucket, AccessDenied, InvalidAccessKeyId,
//	SignatureDoesNotMatch, ExpiredToken, 401, 403      ErrUnavailable
//	retries exhausted (throttling, 5xx, network)       ErrUnavailable, "gave up after N attempts"
//	a network error                                    ErrUnavailable
//	context cancelled or deadline exceeded             the context's error
//
// The SDK's message (operation, status, request id, the server's error code
// and message) is kept; it never holds credentials: the SDK does not put
// the signature or keys in errors, and server messages are reduced to
// their Code and Message.
func (b *Backend) mapErr(err error) error {
	if err == nil {
		return nil
	}
	switch {
	case errors.Is(err, context.Canceled):
		return fmt.Errorf("%w (%v)", context.Canceled, err)
	case errors.Is(err, context.DeadlineExceeded):
		return fmt.Errorf("%w (%v)", context.DeadlineExceeded, err)
	}
	var gaveUp *retry.MaxAttemptsError
	if errors.As(err, &gaveUp) {
		return fmt.Errorf("%w: gave up after %d attempts: %v", storage.ErrUnavailable, gaveUp.Attempt, err)
	}
	var api smithy.APIError
	if errors.As(err, &api) {
		switch api.ErrorCode() {
		case "NoSuchKey", "NotFound":
			return fmt.Errorf("%w (%v)", storage.ErrNotFound, err)
		case "InvalidRange":
			return fmt.Errorf("%w (%v)", storage.ErrInvalidRange, err)
		case "NoSuchBucket":
			return fmt.Errorf("%w: bucket %q does not exist (%v)", storage.ErrUnavailable, b.bucket, err)
		case "AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch", "ExpiredToken", "InvalidToken":
			return fmt.Errorf("%w: credentials refused (%v)", storage.ErrUnavailable, err)
		}
	}
	switch httpStatus(err) {
	case 404:
		return fmt.Errorf("%w (%v)", storage.ErrNotFound, err)
	case 416:
		return fmt.Errorf("%w (%v)", storage.ErrInvalidRange, err)
	case 401, 403:
		return fmt.Errorf("%w: credentials refused (%v)", storage.ErrUnavailable, err)
	}
	var ne net.Error
	if errors.As(err, &ne) {
		return fmt.Errorf("%w: %v", storage.ErrUnavailable, err)
	}
	return err
}

// httpStatus returns the HTTP status of a response error, or 0.
func httpStatus(err error) int {
	var re *smithyhttp.ResponseError
	if errors.As(err, &re) {
		return re.HTTPStatusCode()
	}
	return 0
}
