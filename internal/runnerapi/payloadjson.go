package runnerapi

import (
	"encoding/json"
	"strconv"

	"gantry/internal/jsonw"
)

// appendJSON writes the payload as encoding/json would (fields in struct
// order, nil slices as null, HTML characters left unescaped), without
// reflection: encoding it was a twentieth of the CPU a no-op job costs.
// TestPayloadJSONMatchesEncoder holds the two to the same document.
func (p *jobPayload) appendJSON(b []byte) ([]byte, error) {
	b = append(b, `{"id":`...)
	b = strconv.AppendInt(b, p.ID, 10)
	b = append(b, `,"token":`...)
	b = jsonw.String(b, p.Token)
	b = append(b, `,"allow_git_fetch":`...)
	b = strconv.AppendBool(b, p.AllowGitFetch)

	ji := &p.JobInfo
	b = append(b, `,"job_info":{"id":`...)
	b = strconv.AppendInt(b, ji.ID, 10)
	b = jsonw.Field(b, "name", ji.Name)
	b = jsonw.Field(b, "stage", ji.Stage)
	b = append(b, `,"project_id":`...)
	b = strconv.AppendInt(b, ji.ProjectID, 10)
	b = jsonw.Field(b, "project_name", ji.ProjectName)
	b = jsonw.Field(b, "project_full_path", ji.ProjectFullPath)
	b = append(b, `,"namespace_id":`...)
	b = strconv.AppendInt(b, ji.NamespaceID, 10)
	b = append(b, `,"pipeline_id":`...)
	b = strconv.AppendInt(b, ji.PipelineID, 10)
	b = append(b, `,"user_id":`...)
	if ji.UserID == nil {
		b = append(b, "null"...)
	} else {
		b = strconv.AppendInt(b, *ji.UserID, 10)
	}
	b = append(b, `,"time_in_queue_seconds":`...)
	b = jsonw.Float(b, ji.TimeInQueueSeconds)
	b = jsonw.Field(b, "project_jobs_running_on_instance_runners_count", ji.InstanceRunnersJobs)

	gi := &p.GitInfo
	b = append(b, `},"git_info":{"repo_url":`...)
	b = jsonw.String(b, gi.RepoURL)
	b = jsonw.Fields(b, "repo_object_format", gi.RepoObjectFormat, "ref", gi.Ref, "sha", gi.SHA, "before_sha", gi.BeforeSHA, "ref_type", gi.RefType)
	b = append(b, `,"protected":`...)
	b = strconv.AppendBool(b, gi.Protected)
	b = append(b, `,"refspecs":`...)
	b = jsonw.Strings(b, gi.Refspecs)
	b = append(b, `,"depth":`...)
	b = strconv.AppendInt(b, int64(gi.Depth), 10)

	b = append(b, `},"runner_info":{"timeout":`...)
	b = strconv.AppendInt(b, int64(p.RunnerInfo.Timeout), 10)

	b = append(b, `},"variables":`...)
	b = list(b, p.Variables, func(b []byte, v *payloadVariable) []byte {
		b = append(b, `{"key":`...)
		b = jsonw.String(b, v.Key)
		b = jsonw.Field(b, "value", v.Value)
		b = jsonw.BoolField(b, "public", v.Public)
		b = jsonw.BoolField(b, "masked", v.Masked)
		b = jsonw.BoolField(b, "file", v.File)
		b = jsonw.BoolField(b, "raw", v.Raw)
		return append(b, '}')
	})
	b = append(b, `,"steps":`...)
	b = list(b, p.Steps, func(b []byte, s *payloadStep) []byte {
		b = append(b, `{"name":`...)
		b = jsonw.String(b, s.Name)
		b = append(b, `,"script":`...)
		b = jsonw.Strings(b, s.Script)
		b = append(b, `,"timeout":`...)
		b = strconv.AppendInt(b, int64(s.Timeout), 10)
		b = jsonw.Field(b, "when", s.When)
		b = jsonw.BoolField(b, "allow_failure", s.AllowFailure)
		return append(b, '}')
	})
	b = append(b, `,"image":`...)
	if p.Image == nil {
		b = append(b, "null"...)
	} else {
		b = appendImage(b, p.Image)
	}
	b = append(b, `,"services":`...)
	b = list(b, p.Services, appendImage)
	b = append(b, `,"artifacts":`...)
	b = list(b, p.Artifacts, func(b []byte, a *payloadArtifact) []byte {
		b = append(b, `{"name":`...)
		b = jsonw.String(b, a.Name)
		b = jsonw.BoolField(b, "untracked", a.Untracked)
		b = append(b, `,"paths":`...)
		b = jsonw.Strings(b, a.Paths)
		b = append(b, `,"exclude":`...)
		b = jsonw.Strings(b, a.Exclude)
		b = jsonw.Fields(b, "when", a.When, "artifact_type", a.ArtifactType, "artifact_format", a.ArtifactFormat, "expire_in", a.ExpireIn)
		return append(b, '}')
	})
	// Cache and credentials are free-form; encoding/json writes them.
	for _, part := range []struct {
		name string
		v    []any
	}{{"cache", p.Cache}, {"credentials", p.Credentials}} {
		b = jsonw.Key(b, part.name)
		if part.v != nil && len(part.v) == 0 {
			b = append(b, '[', ']')
			continue
		}
		raw, err := json.Marshal(part.v)
		if err != nil {
			return nil, err
		}
		b = append(b, raw...)
	}
	b = append(b, `,"dependencies":`...)
	b = list(b, p.Dependencies, func(b []byte, d *payloadDependency) []byte {
		b = append(b, `{"id":`...)
		b = strconv.AppendInt(b, d.ID, 10)
		b = jsonw.Field(b, "name", d.Name)
		b = jsonw.Field(b, "token", d.Token)
		b = append(b, `,"artifacts_file":{"filename":`...)
		b = jsonw.String(b, d.ArtifactsFile.Filename)
		b = append(b, `,"size":`...)
		b = strconv.AppendInt(b, d.ArtifactsFile.Size, 10)
		return append(b, '}', '}')
	})
	f := &p.Features
	b = append(b, `,"features":{"trace_sections":`...)
	b = strconv.AppendBool(b, f.TraceSections)
	b = append(b, `,"token_mask_prefixes":`...)
	b = jsonw.Strings(b, f.TokenMaskPrefixes)
	b = append(b, `,"failure_reasons":`...)
	b = jsonw.Strings(b, f.FailureReasons)
	return append(b, '}', '}'), nil
}

func appendImage(b []byte, im *payloadImage) []byte {
	b = append(b, `{"name":`...)
	b = jsonw.String(b, im.Name)
	if im.Alias != "" {
		b = jsonw.Field(b, "alias", im.Alias)
	}
	for _, opt := range []struct {
		name string
		v    []string
	}{{"command", im.Command}, {"entrypoint", im.Entrypoint}, {"pull_policy", im.PullPolicy}} {
		if len(opt.v) > 0 { // omitempty
			b = jsonw.Strings(jsonw.Key(b, opt.name), opt.v)
		}
	}
	return append(b, '}')
}

// list appends an array of elements written by each, null when nil.
func list[T any](b []byte, v []T, each func([]byte, *T) []byte) []byte {
	if v == nil {
		return append(b, "null"...)
	}
	b = append(b, '[')
	for i := range v {
		if i > 0 {
			b = append(b, ',')
		}
		b = each(b, &v[i])
	}
	return append(b, ']')
}
