# Sourced by the long-running scripts: `snapshot_code DIR` makes DIR a detached git worktree
# at the checkout's HEAD (created once, moved to HEAD on later calls) and prints its commit.
# Long runs start from it, not from the checkout: they trace some functions lazily (the
# first evaluation) and autograph reads their source from disk, so editing the checkout
# under a running study broke all three of its runs once (2026-12-06).
snapshot_code() {
  local code=$1
  if [ -e "$code/.git" ]; then
    git -C "$code" checkout -q --detach "$(git rev-parse HEAD)"
  else
    git worktree add -q --detach "$code" HEAD
  fi
  echo "code: $(git -C "$code" log --oneline -1) in $code (uncommitted changes are not in it)"
}
