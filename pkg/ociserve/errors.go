package ociserve

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"

	"github.com/artifactstore/artifact-store/pkg/dataplane"
	"github.com/artifactstore/artifact-store/pkg/db"
	"github.com/artifactstore/artifact-store/pkg/registry"
	"github.com/artifactstore/artifact-store/pkg/storage"
)

// Error codes of the distribution spec (§ "Error Codes").
const (
	CodeBlobUnknown         = "BLOB_UNKNOWN"
	CodeBlobUploadInvalid   = "BLOB_UPLOAD_INVALID"
	CodeBlobUploadUnknown   = "BLOB_UPLOAD_UNKNOWN"
	CodeDigestInvalid       = "DIGEST_INVALID"
	CodeManifestBlobUnknown = "MANIFEST_BLOB_UNKNOWN"
	CodeManifestInvalid     = "MANIFEST_INVALID"
	CodeManifestUnknown     = "MANIFEST_UNKNOWN"
	CodeNameInvalid         = "NAME_INVALID"
	CodeNameUnknown         = "NAME_UNKNOWN"
	CodeSizeInvalid         = "SIZE_INVALID"
	CodeUnauthorized        = "UNAUTHORIZED"
	CodeDenied              = "DENIED"
	CodeUnsupported         = "UNSUPPORTED"
	CodeTooManyRequests     = "TOOMANYREQUESTS"
	// codeUnknown is for failures of the server itself (not a spec code;
	// clients treat any unknown code as a failure).
	codeUnknown = "UNKNOWN"
)

// apiError is one error answer: an HTTP status and one spec error.
type apiError struct {
	Status  int
	Code    string
	Message string
	// Header is set on the answer as well (Location, Range,
	// WWW-Authenticate).
	Header http.Header
}

func (e *apiError) Error() string { return "ociserve: " + e.Code + ": " + e.Message }

func newError(status int, code, msg string) *apiError {
	return &apiError{Status: status, Code: code, Message: msg}
}

// toAPIError maps an error from the registry to the spec's answer; notFound
// is the code a missing thing gets on this route.
func toAPIError(err error, notFound string) *apiError {
	var ae *apiError
	switch {
	case errors.As(err, &ae):
		return ae
	case errors.Is(err, storage.ErrDigestMismatch), errors.Is(err, dataplane.ErrDigestMismatch):
		return newError(http.StatusBadRequest, CodeDigestInvalid, err.Error())
	case errors.Is(err, registry.ErrNotFound), errors.Is(err, storage.ErrNotFound):
		status := http.StatusNotFound
		return newError(status, notFound, err.Error())
	case errors.Is(err, registry.ErrInvalid):
		return newError(http.StatusBadRequest, CodeManifestInvalid, err.Error())
	case errors.Is(err, registry.ErrCollecting):
		// A race with a sweep, not a refusal: DENIED would make clients
		// give up; TOOMANYREQUESTS with Retry-After makes them push again.
		e := newError(http.StatusTooManyRequests, CodeTooManyRequests, err.Error())
		e.Header = http.Header{"Retry-After": {"1"}}
		return e
	case errors.Is(err, registry.ErrConflict), errors.Is(err, registry.ErrPackageFinalized):
		return newError(http.StatusForbidden, CodeDenied, err.Error())
	case errors.Is(err, db.ErrUnavailable), errors.Is(err, storage.ErrUnavailable):
		return newError(http.StatusServiceUnavailable, codeUnknown, "the store is unavailable")
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return newError(http.StatusRequestTimeout, codeUnknown, "request cancelled or timed out")
	}
	return newError(http.StatusInternalServerError, codeUnknown, "internal error")
}

type errorBody struct {
	Errors []errorEntry `json:"errors"`
}

type errorEntry struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

// writeError writes e as the spec's JSON error document.
func writeError(w http.ResponseWriter, r *http.Request, e *apiError) {
	h := w.Header()
	for k, vs := range e.Header {
		h[k] = vs
	}
	h.Set("Content-Type", "application/json")
	b, _ := json.Marshal(errorBody{Errors: []errorEntry{{Code: e.Code, Message: e.Message}}})
	h.Set("Content-Length", itoa(int64(len(b))))
	w.WriteHeader(e.Status)
	if r.Method != http.MethodHead {
		w.Write(b)
	}
}
