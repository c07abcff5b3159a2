package httpapi

import (
	"net/http"
	"strconv"
	"strings"

	"gantry/internal/ci"
	"gantry/internal/logsearch"
	"gantry/internal/store"
)

// logSearchHit is one job of a log search answer: a compact job and its
// matching lines.
type logSearchHit struct {
	Job       logSearchJob    `json:"job"`
	Lines     []logSearchLine `json:"lines"`
	MoreLines bool            `json:"more_lines"`
}

type logSearchJob struct {
	ID         int64  `json:"id"`
	Name       string `json:"name"`
	Stage      string `json:"stage"`
	Status     string `json:"status"`
	Ref        string `json:"ref"`
	PipelineID int64  `json:"pipeline_id"`
	CreatedAt  Time   `json:"created_at"`
	FinishedAt *Time  `json:"finished_at"`
	WebURL     string `json:"web_url"`
}

type logSearchLine struct {
	Offset      int64  `json:"offset"`
	MatchOffset int64  `json:"match_offset"`
	Text        string `json:"text"`
}

// GET /projects/:id/jobs/search: gantry's extension, the jobs whose logs
// contain q (newest first), with their matching lines. Readable by whoever
// may read the project's job logs.
func (a *API) handleSearchJobLogs(w http.ResponseWriter, r *http.Request) error {
	ident, err := a.requireUser(r, authUser)
	if err != nil {
		return err
	}
	p, err := readParams(r)
	if err != nil {
		return err
	}
	if err := p.requireStr("q"); err != nil {
		return err
	}
	text := p.str("q")
	if len(text) < logsearch.MinQueryBytes || len(text) > logsearch.MaxQueryBytes {
		return errParam("q must be " + strconv.Itoa(logsearch.MinQueryBytes) + " to " + strconv.Itoa(logsearch.MaxQueryBytes) + " bytes long")
	}
	scopes, err := p.scopes(true)
	if err != nil {
		return err
	}
	var jf store.JobFilter
	if err := p.jobTimeFilters(&jf); err != nil {
		return err
	}
	if !jf.UpdatedAfter.IsZero() || !jf.UpdatedBefore.IsZero() {
		return errParam("updated_after and updated_before are not supported by search")
	}
	foldCase, _, err := p.boolParam("case_insensitive")
	if err != nil {
		return err
	}
	pp, err := p.pagination()
	if err != nil {
		return err
	}
	var cursor keysetCursor
	if c := p.str("cursor"); c != "" {
		if cursor, err = decodeCursor(c); err != nil {
			return err
		}
	}
	pv, err := a.findProjectForBuilds(r, ident)
	if err != nil {
		return err
	}
	res, err := a.search.Search(r.Context(), logsearch.Query{
		Filter: store.LogSearchFilter{ProjectID: pv.project.ID, Statuses: scopes, Ref: strings.TrimSpace(p.str("ref")),
			CreatedAfter: jf.CreatedAfter, CreatedBefore: jf.CreatedBefore, BeforeID: cursor.ID},
		Text: []byte(text), FoldCase: foldCase, Jobs: pp.PerPage,
	})
	if err != nil {
		return err
	}
	ids := make([]int64, len(res.Hits))
	for i, h := range res.Hits {
		ids[i] = h.JobID
	}
	jobs, err := a.store.JobsByIDs(r.Context(), pv.project.ID, ids)
	if err != nil {
		return err
	}
	byID := make(map[int64]*ci.Job, len(jobs))
	for _, j := range jobs {
		byID[j.ID] = j
	}
	out := make([]logSearchHit, 0, len(res.Hits))
	for _, h := range res.Hits {
		j := byID[h.JobID]
		if j == nil {
			continue // deleted since
		}
		hit := logSearchHit{Job: logSearchJob{ID: j.ID, Name: j.Name, Stage: j.Stage, Status: string(j.Status), Ref: j.Ref, PipelineID: j.PipelineID,
			CreatedAt: Time(j.CreatedAt), FinishedAt: tp(j.FinishedAt), WebURL: a.projectURL(pv.project) + "/-/jobs/" + strconv.FormatInt(j.ID, 10)},
			MoreLines: h.More}
		for _, l := range h.Lines {
			hit.Lines = append(hit.Lines, logSearchLine{Offset: l.Offset, MatchOffset: l.Match, Text: l.Text})
		}
		out = append(out, hit)
	}
	if res.Next > 0 {
		extra := map[string]string{"cursor": encodeCursor(keysetCursor{ID: res.Next, Direction: "n"}), "id": r.PathValue("id"), "per_page": strconv.Itoa(pp.PerPage)}
		w.Header().Set("Link", "<"+a.linkURL(r, p, extra, "page")+`>; rel="next"`)
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}
