#!/usr/bin/env bash
# packaging.install: proves the packages by building and installing them.
#
# Run by ctest on the release build (packaging/CMakeLists.txt) as root, on a machine
# that may be changed (CI's, or a developer's): it builds the .deb with cpack from
# the build directory, inspects it (dpkg-deb, lintian with no errors), installs it on
# this machine, runs the installed binary as the installed user in front of an echo
# backend and proxies one WebSocket echo through it, rotates its access log the way
# the installed logrotate snippet does, installs it again (the upgrade path) and then
# removes it, showing a changed configuration kept by both, then purges it. Then it
# builds the .rpm with Debian's rpm tools and checks its files, config flags,
# scriptlets and requires. `systemd-analyze verify` checks the installed unit where
# it can run.
#
# Every step has a time limit. Only processes started here are stopped, by PID. At
# the end (whatever happens) the package is purged and the switchboard user removed
# if this test created it. It refuses to run, rather than touch it, when a switchboard
# package is already on the machine.
#
# Environment (set by ctest): SB_BUILD_DIR (the build directory, with
# CPackConfig.cmake), SB_TOOLS_DIR (sb-echo-backend), SB_PYTHON (Debian's python3,
# which has python3-websockets). Exit 77 = skipped.
set -euo pipefail

build_dir=${SB_BUILD_DIR:?SB_BUILD_DIR: the build directory}
tools_dir=${SB_TOOLS_DIR:-$build_dir/tools}
source_dir=${SB_SOURCE_DIR:-$(cd "$(dirname "$0")/.." && pwd)}
python=${SB_PYTHON:-/usr/bin/python3}

step() { printf '\n== %s\n' "$*"; }
fail() { printf 'FAIL: %s\n' "$*" >&2; exit 1; }
skip() { printf 'SKIP: %s\n' "$*"; exit 77; }
ok() { printf 'ok: %s\n' "$*"; }

# Waits until FILE has a line matching the extended regex PATTERN; prints the line.
wait_line() {
    local file=$1 pattern=$2 seconds=${3:-10} line=""
    local deadline=$((SECONDS + seconds))
    while [ "$SECONDS" -le "$deadline" ]; do
        line=$(grep -E -m1 -- "$pattern" "$file" 2>/dev/null || true)
        if [ -n "$line" ]; then
            printf '%s\n' "$line"
            return 0
        fi
        sleep 0.1
    done
    echo "timed out after ${seconds}s waiting for /$pattern/ in $file; it holds:" >&2
    cat "$file" >&2 2>/dev/null || true
    return 1
}

# dpkg's idea of the switchboard package: "" (unknown), installed, config-files...
package_state() {
    dpkg-query -W -f='${db:Status-Status}' switchboard 2>/dev/null || true
}

# ---- preconditions
[ "$(id -u)" -eq 0 ] || skip "installing a package needs root"
command -v dpkg >/dev/null || skip "not a Debian system (no dpkg)"
for tool in cpack dpkg-deb dpkg-shlibdeps file lintian rpmbuild rpm readelf setpriv; do
    command -v "$tool" >/dev/null || fail "$tool is missing: run tools/setup"
done
[ -x "$python" ] || fail "$python is missing: run tools/setup"
[ -f "$build_dir/CPackConfig.cmake" ] || fail "no $build_dir/CPackConfig.cmake"
[ -x "$build_dir/proxy/switchboard" ] || fail "no $build_dir/proxy/switchboard: build first"
[ -x "$tools_dir/sb-echo-backend" ] || fail "no $tools_dir/sb-echo-backend: build first"
case "$(package_state)" in
    "" | not-installed) ;;
    *) fail "a switchboard package is already on this machine ($(package_state)); this test" \
            "installs and purges its own, so it leaves that one alone: dpkg --purge switchboard" \
            "lets it run" ;;
esac

version=$("$build_dir/proxy/switchboard" --version | sed -n 's/^switchboard //p')
[ -n "$version" ] || fail "cannot read the version of $build_dir/proxy/switchboard"
user_existed=no
if getent passwd switchboard >/dev/null; then user_existed=yes; fi

work=$(mktemp -d /tmp/sb-packaging.XXXXXX)
chmod 0755 "$work" # the switchboard user reads its configuration from here
pids=()
installed=no

cleanup() {
    local status=$?
    set +e
    for pid in "${pids[@]}"; do
        kill "$pid" 2>/dev/null
    done
    for pid in "${pids[@]}"; do
        for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$pid" 2>/dev/null
        wait "$pid" 2>/dev/null
    done
    local state
    state=$(package_state)
    if [ "$installed" = yes ] && [ -n "$state" ] && [ "$state" != not-installed ]; then
        echo "cleanup: purging the switchboard package"
        timeout 120 dpkg --purge switchboard >/dev/null
    fi
    if [ "$user_existed" = no ] && getent passwd switchboard >/dev/null; then
        echo "cleanup: removing the switchboard user"
        timeout 60 deluser --quiet --system switchboard >/dev/null 2>&1
    fi
    if [ "$user_existed" = no ] && getent group switchboard >/dev/null; then
        timeout 60 delgroup --quiet --system switchboard >/dev/null 2>&1
    fi
    rm -rf "$work"
    exit "$status"
}
trap cleanup EXIT
trap 'exit 1' INT TERM HUP

# The Debian packages that own the libraries FILE needs (NEEDED entries), one per
# line as "SONAME PACKAGE...".
needed_packages() {
    local soname owners
    for soname in $(readelf -d "$1" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p'); do
        owners=$(dpkg -S "*/$soname" 2>/dev/null | sed 's/:.*//' | tr ',' '\n' | sed 's/^ *//' |
                 grep -v -- '-dev$' | sort -u | tr '\n' ' ')
        printf '%s %s\n' "$soname" "$owners"
    done
}

# ---- the .deb: build and inspect
step "cpack: build the .deb from $build_dir"
(cd "$build_dir" && timeout 300 cpack -G DEB -B "$work/deb")
deb=$(ls "$work"/deb/switchboard_*.deb)
echo "$deb ($(stat -c %s "$deb") bytes)"

step "dpkg-deb -I"
dpkg-deb -I "$deb"
[ "$(dpkg-deb -f "$deb" Package)" = switchboard ] || fail "Package field"
[ "$(dpkg-deb -f "$deb" Version)" = "$version-1" ] || fail "Version is not $version-1"
[ "$(dpkg-deb -f "$deb" Architecture)" = "$(dpkg --print-architecture)" ] || fail "Architecture"
for field in Maintainer Description Homepage Section Priority Installed-Size; do
    [ -n "$(dpkg-deb -f "$deb" "$field")" ] || fail "no $field field"
done
depends=$(dpkg-deb -f "$deb" Depends)
[[ ", $depends," == *", adduser,"* ]] || fail "Depends lacks adduser (postinst runs it): $depends"

step "dpkg-deb -c"
dpkg-deb -c "$deb" | tee "$work/deb-contents"
awk '{print $6}' "$work/deb-contents" | sed 's|^\./|/|; s|/$||' | sort >"$work/deb-paths"
for path in /usr/bin/switchboard /etc/switchboard/switchboard.toml /etc/logrotate.d/switchboard \
    /usr/lib/systemd/system/switchboard.service /usr/share/man/man8/switchboard.8.gz \
    /usr/share/man/man5/switchboard.toml.5.gz /usr/share/doc/switchboard/copyright \
    /usr/share/doc/switchboard/changelog.Debian.gz; do
    grep -qx -- "$path" "$work/deb-paths" || fail "the .deb lacks $path"
done
# The monitoring and Kubernetes files, each the same as in the source tree.
shared_files=(grafana/switchboard-dashboard.json prometheus/switchboard-rules.yml
              prometheus/switchboard-rules.test.yml kubernetes/kustomization.yaml
              kubernetes/namespace.yaml kubernetes/configmap.yaml kubernetes/deployment.yaml
              kubernetes/service.yaml kubernetes/backend-service.yaml kubernetes/pdb.yaml)
for file in "${shared_files[@]}"; do
    grep -qx -- "/usr/share/switchboard/$file" "$work/deb-paths" ||
        fail "the .deb lacks /usr/share/switchboard/$file"
done
if awk '{print $2}' "$work/deb-contents" | grep -v '^root/root$'; then
    fail "files not owned by root/root"
fi
ok "every expected file is in the .deb, owned by root"

dpkg-deb -x "$deb" "$work/root"
dpkg-deb -e "$deb" "$work/control"
cmp "$work/root/etc/switchboard/switchboard.toml" "$source_dir/conf/switchboard.toml" ||
    fail "/etc/switchboard/switchboard.toml is not conf/switchboard.toml"
for file in "${shared_files[@]}"; do
    cmp "$work/root/usr/share/switchboard/$file" "$source_dir/packaging/$file" ||
        fail "/usr/share/switchboard/$file is not packaging/$file"
done
printf '/etc/logrotate.d/switchboard\n/etc/switchboard/switchboard.toml\n' >"$work/want-conffiles"
sort "$work/control/conffiles" | diff -u "$work/want-conffiles" - || fail "conffiles"
for script in postinst prerm postrm; do
    [ -x "$work/control/$script" ] || fail "no executable $script"
    sh -n "$work/control/$script" || fail "$script: syntax"
done
grep -q 'adduser .*--system' "$work/control/postinst" || fail "postinst does not create the user"
grep -q 'deb-systemd-invoke stop' "$work/control/prerm" || fail "prerm does not stop the service"
ok "conffiles and maintainer scripts"

# Dependencies are computed (dpkg-shlibdeps): every library the binary links must
# come with a dependency on the package that ships it.
file "$work/root/usr/bin/switchboard" | grep -q ', stripped$' || fail "the binary is not stripped"
depends_names=$(tr ',|' '\n\n' <<<"$depends" | sed 's/^ *//; s/[ (].*//')
while read -r soname owners; do
    found=""
    for pkg in $owners; do
        if grep -qxF -- "$pkg" <<<"$depends_names"; then found=$pkg; fi
    done
    [ -n "$found" ] || fail "$soname (shipped by: $owners) has no dependency in: $depends"
    echo "needs $soname: Depends has $found"
done < <(needed_packages "$work/root/usr/bin/switchboard")
ok "Depends covers every needed library"

step "lintian (errors fail; warnings and infos are shown)"
status=0
timeout 300 lintian --fail-on error --display-info --show-overrides "$deb" \
    >"$work/lintian.log" 2>&1 || status=$?
grep -v '^running with root privileges is not recommended!$' "$work/lintian.log" || true
[ "$status" -eq 0 ] || fail "lintian reported errors (exit $status)"
ok "lintian: no errors"

# ---- install on this machine
step "apt-get install $deb"
installed=yes
DEBIAN_FRONTEND=noninteractive timeout 300 \
    apt-get install -y -q --no-install-recommends -o DPkg::Lock::Timeout=120 "$deb"
[ "$(package_state)" = installed ] || fail "package state after install: $(package_state)"
IFS=: read -r _ _ uid gid _ home shell < <(getent passwd switchboard) || fail "no switchboard user"
[ "$uid" -lt 1000 ] || fail "switchboard is not a system user (uid $uid)"
getent group switchboard >/dev/null || fail "no switchboard group"
echo "user switchboard: uid $uid gid $gid home $home shell $shell"
dpkg-query -W -f='${Conffiles}\n' switchboard | tee "$work/conffiles-installed"
grep -q '/etc/switchboard/switchboard.toml' "$work/conffiles-installed" ||
    fail "conffile not registered"
if command -v deb-systemd-helper >/dev/null; then
    [ -L /etc/systemd/system/multi-user.target.wants/switchboard.service ] ||
        fail "postinst did not enable switchboard.service"
    ok "switchboard.service enabled (multi-user.target.wants), not started: systemd is not running"
fi
if command -v man >/dev/null; then
    man -w switchboard >/dev/null && man -w 5 switchboard.toml >/dev/null || fail "man -w"
    ok "man switchboard and man 5 switchboard.toml find the installed pages"
fi

step "installed binary: --version and --check on the installed configuration"
[ "$(/usr/bin/switchboard --version)" = "switchboard $version" ] || fail "--version"
out=$(timeout 10 /usr/bin/switchboard --check -c /etc/switchboard/switchboard.toml)
echo "$out"
[ "$out" = "configuration ok" ] || fail "--check on the installed configuration"

step "systemd-analyze verify /usr/lib/systemd/system/switchboard.service"
if ! command -v systemd-analyze >/dev/null; then
    echo "skipped: systemd-analyze is not installed"
else
    # A trivial unit first: if even that fails, systemd-analyze cannot work here
    # (some containers), and that says nothing about our unit.
    mkdir "$work/probe"
    printf '[Service]\nExecStart=/bin/true\n' >"$work/probe/sb-probe.service"
    if ! timeout 60 systemd-analyze verify "$work/probe/sb-probe.service" \
        >"$work/probe.log" 2>&1; then
        echo "skipped: systemd-analyze verify cannot run here:"
        sed 's/^/  /' "$work/probe.log"
    else
        status=0
        timeout 60 systemd-analyze verify /usr/lib/systemd/system/switchboard.service \
            >"$work/verify.log" 2>&1 || status=$?
        cat "$work/verify.log"
        [ "$status" -eq 0 ] && ! [ -s "$work/verify.log" ] ||
            fail "systemd-analyze verify found problems in switchboard.service"
        ok "systemd-analyze verify: clean"
        timeout 60 systemd-analyze security --offline=true \
            /usr/lib/systemd/system/switchboard.service 2>/dev/null |
            grep 'Overall exposure' || true
    fi
fi

step "run the installed binary as the switchboard user and proxy a WebSocket echo"
run=$work/run
mkdir "$run"
"$tools_dir/sb-echo-backend" --listen 127.0.0.1:0 --name packaged-echo >"$run/echo.out" 2>&1 &
pids+=($!)
backend=$(wait_line "$run/echo.out" '^listening ' 10 | sed 's/^listening //')
# /var/log/switchboard as systemd's LogsDirectory= would make it (systemd is not
# running here), so that the access log goes where the packaged unit allows it.
install -d -m 0750 -o switchboard -g switchboard /var/log/switchboard
cat >"$run/switchboard.toml" <<EOF
[log]
access_log = "/var/log/switchboard/access.log"

[[listeners]]
name = "public"
listen = "127.0.0.1:0"
pool = "echo"

[pools.echo]
backends = [ { address = "$backend" } ]
EOF
chmod 0644 "$run/switchboard.toml"
as_switchboard=(setpriv --reuid=switchboard --regid=switchboard --clear-groups)
timeout 10 "${as_switchboard[@]}" /usr/bin/switchboard --check -c "$run/switchboard.toml"
"${as_switchboard[@]}" /usr/bin/switchboard -c "$run/switchboard.toml" 2>"$run/switchboard.err" &
proxy_pid=$!
pids+=("$proxy_pid")
address=$(wait_line "$run/switchboard.err" '^listening public ' 10 | sed 's/^listening public //')
echo "switchboard (pid $proxy_pid, user $(stat -c %U "/proc/$proxy_pid")) listens on $address;" \
    "backend $backend"
[ "$(stat -c %U "/proc/$proxy_pid")" = switchboard ] || fail "not running as switchboard"

# One WebSocket client on Debian's python3-websockets: the echo comes back through
# the proxy, and "whoami" names the backend that answered.
echo_through() {
    timeout 30 "$python" - "ws://$address/chat" "$1" <<'EOF'
import asyncio
import sys

import websockets


async def main(url, text):
    async with websockets.connect(url, open_timeout=10, close_timeout=5) as ws:
        await ws.send(text)
        reply = await asyncio.wait_for(ws.recv(), 10)
        assert reply == text, f"echo {reply!r} != {text!r}"
        await ws.send("whoami")
        name = await asyncio.wait_for(ws.recv(), 10)
        assert name == "packaged-echo", f"backend {name!r}"
        print(f"echo through {url}: {reply!r} from {name}")


asyncio.run(main(sys.argv[1], sys.argv[2]))
EOF
}
echo_through "hello through the installed package"
wait_line /var/log/switchboard/access.log '"listener"' 10 >/dev/null
ok "access log line in /var/log/switchboard/access.log"

step "logrotate with the installed snippet, then SIGUSR1 (what its postrotate sends)"
if command -v logrotate >/dev/null; then
    timeout 60 logrotate --force --state "$work/logrotate.state" /etc/logrotate.d/switchboard
    [ -s /var/log/switchboard/access.log.1 ] || fail "logrotate did not rotate access.log"
    [ "$(stat -c %U /var/log/switchboard/access.log)" = switchboard ] || fail "new access.log owner"
    ok "logrotate rotated access.log to access.log.1 and created a new one"
else
    echo "logrotate is not installed: rotating by hand"
    mv /var/log/switchboard/access.log /var/log/switchboard/access.log.1
fi
lines_before=$(wc -l </var/log/switchboard/access.log.1)
kill -USR1 "$proxy_pid"
wait_line "$run/switchboard.err" 'access log reopened' 10
echo_through "hello after the rotation"
wait_line /var/log/switchboard/access.log '"listener"' 10 >/dev/null
[ "$(wc -l </var/log/switchboard/access.log.1)" -eq "$lines_before" ] ||
    fail "the rotated file still got lines after SIGUSR1"
ok "after SIGUSR1 the access log goes to the new file"

step "SIGTERM: drain and exit 0"
kill -TERM "$proxy_pid"
for _ in $(seq 150); do kill -0 "$proxy_pid" 2>/dev/null || break; sleep 0.1; done
kill -0 "$proxy_pid" 2>/dev/null && fail "switchboard still runs 15 s after SIGTERM"
proxy_status=0
wait "$proxy_pid" || proxy_status=$?
[ "$proxy_status" -eq 0 ] || fail "switchboard exited with $proxy_status after SIGTERM"
ok "switchboard exited 0"

# ---- upgrade (the same version again: postinst runs as for an upgrade), then
# remove: a changed configuration survives both, then purge deletes it.
step "dpkg -i again (the upgrade path): the changed configuration is kept"
echo "# a local change, kept by upgrades and by dpkg -r" >>/etc/switchboard/switchboard.toml
timeout 120 dpkg -i --force-confold "$deb" </dev/null
[ "$(package_state)" = installed ] || fail "package state after reinstall: $(package_state)"
grep -q 'a local change, kept by upgrades' /etc/switchboard/switchboard.toml ||
    fail "the upgrade replaced the changed /etc/switchboard/switchboard.toml"
getent passwd switchboard >/dev/null || fail "the upgrade lost the switchboard user"
ok "upgrade kept the local change and the user"

step "dpkg -r switchboard: the configuration is kept"
timeout 120 dpkg -r switchboard
[ "$(package_state)" = config-files ] || fail "package state after dpkg -r: $(package_state)"
[ ! -e /usr/bin/switchboard ] || fail "/usr/bin/switchboard is still there"
[ ! -e /usr/lib/systemd/system/switchboard.service ] || fail "the unit is still there"
ls -l /etc/switchboard/switchboard.toml
grep -q 'a local change, kept by upgrades and by dpkg -r' /etc/switchboard/switchboard.toml ||
    fail "/etc/switchboard/switchboard.toml was not kept"
ok "/etc/switchboard/switchboard.toml kept, with its local change"

step "dpkg --purge switchboard"
timeout 120 dpkg --purge switchboard
installed=no
[ -z "$(package_state)" ] || [ "$(package_state)" = not-installed ] ||
    fail "package state after purge: $(package_state)"
for path in /etc/switchboard /var/log/switchboard /etc/systemd/system/switchboard.service \
    /etc/systemd/system/multi-user.target.wants/switchboard.service; do
    [ ! -e "$path" ] && [ ! -L "$path" ] || fail "$path is still there after purge"
done
ok "purged: configuration, logs and unit links gone"

# ---- the .rpm, with Debian's rpm tools
step "cpack: build the .rpm"
(cd "$build_dir" && timeout 300 cpack -G RPM -B "$work/rpm")
rpm_file=$(ls "$work"/rpm/switchboard-*.rpm)
echo "$rpm_file ($(stat -c %s "$rpm_file") bytes)"
rpmq() { timeout 60 rpm -qp "$@" "$rpm_file"; }

step "rpm -qp --info"
rpmq --info
[ "$(rpmq --qf '%{VERSION}-%{RELEASE} %{LICENSE} %{ARCH}')" = "$version-1 MIT $(uname -m)" ] ||
    fail "version, license or architecture"

step "rpm -qp --list"
rpmq --list | tee "$work/rpm-list"
cat >"$work/want-rpm-list" <<'EOF'
/etc/logrotate.d/switchboard
/etc/switchboard
/etc/switchboard/switchboard.toml
/usr/bin/switchboard
/usr/lib/systemd/system/switchboard.service
/usr/share/doc/switchboard
/usr/share/doc/switchboard/changelog.Debian.gz
/usr/share/doc/switchboard/copyright
/usr/share/man/man5/switchboard.toml.5.gz
/usr/share/man/man8/switchboard.8.gz
/usr/share/switchboard
/usr/share/switchboard/grafana
/usr/share/switchboard/grafana/switchboard-dashboard.json
/usr/share/switchboard/kubernetes
/usr/share/switchboard/kubernetes/backend-service.yaml
/usr/share/switchboard/kubernetes/configmap.yaml
/usr/share/switchboard/kubernetes/deployment.yaml
/usr/share/switchboard/kubernetes/kustomization.yaml
/usr/share/switchboard/kubernetes/namespace.yaml
/usr/share/switchboard/kubernetes/pdb.yaml
/usr/share/switchboard/kubernetes/service.yaml
/usr/share/switchboard/prometheus
/usr/share/switchboard/prometheus/switchboard-rules.test.yml
/usr/share/switchboard/prometheus/switchboard-rules.yml
EOF
sort "$work/rpm-list" | diff -u "$work/want-rpm-list" - || fail "the .rpm's file list"

step "rpm -qp --configfiles (and the flags: c = config, n = noreplace)"
rpmq --configfiles
rpmq --qf '[%{FILEFLAGS:fflags} %{FILENAMES}\n]' | tee "$work/rpm-flags"
for path in /etc/switchboard/switchboard.toml /etc/logrotate.d/switchboard; do
    grep -Eq "^[a-z]*c[a-z]*n[a-z]* $path\$|^[a-z]*n[a-z]*c[a-z]* $path\$" "$work/rpm-flags" ||
        fail "$path is not %config(noreplace)"
done
ok "both files in /etc are %config(noreplace)"

step "rpm -qp --scripts"
rpmq --scripts | tee "$work/rpm-scripts"
grep -q 'useradd -r' "$work/rpm-scripts" || fail "no user creation in %pre"
grep -q 'systemctl --no-reload preset switchboard.service' "$work/rpm-scripts" || fail "%post"
grep -q 'systemctl stop switchboard.service' "$work/rpm-scripts" || fail "%preun stop"
grep -q 'systemctl try-restart switchboard.service' "$work/rpm-scripts" || fail "%postun"
for scriptlet in preinstall postinstall preuninstall postuninstall; do
    grep -q "^$scriptlet scriptlet" "$work/rpm-scripts" || fail "no $scriptlet scriptlet"
done

step "rpm -qp --requires"
rpmq --requires | tee "$work/rpm-requires"
grep -qx 'shadow-utils' "$work/rpm-requires" || fail "no requirement on shadow-utils (useradd)"
# The same build, so the same binary as in the .deb.
while read -r soname _; do
    grep -qF "$soname()" "$work/rpm-requires" || fail "no automatic requirement on $soname"
done < <(needed_packages "$work/root/usr/bin/switchboard")
ok "rpm requires every library the binary links (automatic requires)"

step "packaging.install: all checks passed"
