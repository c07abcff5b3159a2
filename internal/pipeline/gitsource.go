package pipeline

import (
	"context"
	"errors"

	"gantry/internal/ci"
	"gantry/internal/githost"
)

// GitSource reads pipelines' inputs from the hosted repositories.
type GitSource struct{ Repos *githost.Repos }

func (s GitSource) ReadFile(ctx context.Context, projectID int64, sha, path string) ([]byte, error) {
	b, err := s.Repos.ReadFile(ctx, projectID, sha, path)
	if errors.Is(err, githost.ErrFileMissing) {
		return nil, ErrFileMissing
	}
	return b, err
}

func (s GitSource) Exists(ctx context.Context, projectID int64, sha, glob string) (bool, error) {
	return s.Repos.Exists(ctx, projectID, sha, glob)
}

func (s GitSource) ChangedPaths(ctx context.Context, projectID int64, before, after string) ([]string, error) {
	return s.Repos.ChangedPaths(ctx, projectID, before, after)
}

func (s GitSource) Commit(ctx context.Context, projectID int64, sha string) (*ci.Commit, error) {
	info, err := s.Repos.Commit(ctx, projectID, sha)
	if err != nil {
		return nil, err
	}
	c := info.Domain()
	return &c, nil
}

func (s GitSource) ResolveRef(ctx context.Context, projectID int64, ref string) (string, error) {
	return s.Repos.ResolveRef(ctx, projectID, ref)
}
