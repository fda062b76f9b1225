//! The container commands' arguments (run/create, start, attach, ps, logs, stop, kill,
//! rm, exec, update, stats, commit, export, top, port): clap structs only, the raw flags
//! that `commands/runopts.rs` and `commands/options.rs` turn into typed options.

use std::path::PathBuf;

#[derive(clap::Args, Debug, Clone)]
#[command(disable_help_flag = true)]
pub struct RunArgs {
    /// Print help
    #[arg(long, action = clap::ArgAction::Help)]
    pub help: Option<bool>,
    /// Remove the container when it exits
    #[arg(long)]
    pub rm: bool,
    /// Run in the background and print the container ID
    #[arg(short, long)]
    pub detach: bool,
    /// Name the container
    #[arg(long)]
    pub name: Option<String>,
    /// Set environment variables (KEY=VALUE, or KEY to take the host's value)
    #[arg(short, long = "env")]
    pub env: Vec<String>,
    /// Read environment variables from a file (KEY=VALUE lines)
    #[arg(long = "env-file")]
    pub env_file: Vec<PathBuf>,
    /// Working directory inside the container
    #[arg(short, long)]
    pub workdir: Option<String>,
    /// USER[:GROUP] or UID[:GID]
    #[arg(short, long)]
    pub user: Option<String>,
    /// Bind a host path or a named volume: /host:/ctr[:ro], name:/ctr, /ctr
    #[arg(short, long = "volume")]
    pub volume: Vec<String>,
    /// Mount the volumes of another container (CONTAINER[:ro|rw])
    #[arg(long = "volumes-from")]
    pub volumes_from: Vec<String>,
    /// Override the image's ENTRYPOINT ("" clears it)
    #[arg(long)]
    pub entrypoint: Option<String>,
    /// bridge (default), none (only lo), host, or a network's name
    #[arg(long, alias = "net", default_value = "bridge")]
    pub network: String,
    /// Publish a port: [IP:][HOST_PORT:]CONTAINER_PORT[/tcp|udp], ports or ranges
    #[arg(short, long = "publish")]
    pub publish: Vec<String>,
    /// Publish every EXPOSEd port on a random host port
    #[arg(short = 'P', long = "publish-all")]
    pub publish_all: bool,
    /// Another name for the container on its (user-defined) network
    #[arg(long = "network-alias", value_name = "ALIAS")]
    pub network_alias: Vec<String>,
    /// A fixed IPv4 address on a user-defined network
    #[arg(long)]
    pub ip: Option<String>,
    /// A name for another container in /etc/hosts: NAME[:ALIAS] (default bridge)
    #[arg(long = "link", value_name = "NAME[:ALIAS]")]
    pub link: Vec<String>,
    /// An entry in /etc/hosts: NAME:IP
    #[arg(long = "add-host", value_name = "NAME:IP")]
    pub add_host: Vec<String>,
    /// DNS servers (resolv.conf)
    #[arg(long, value_name = "IP")]
    pub dns: Vec<String>,
    /// DNS search domains (resolv.conf)
    #[arg(long = "dns-search", value_name = "DOMAIN")]
    pub dns_search: Vec<String>,
    /// Keep standard input open
    #[arg(short, long)]
    pub interactive: bool,
    /// Allocate a pseudo-terminal
    #[arg(short, long)]
    pub tty: bool,
    /// Run an init as PID 1 that reaps zombies and forwards signals
    #[arg(long)]
    pub init: bool,
    /// Memory limit (e.g. 64m)
    #[arg(short, long)]
    pub memory: Option<String>,
    /// Limit the number of processes
    #[arg(long = "pids-limit")]
    pub pids_limit: Option<i64>,
    /// CPU quota in CPUs (e.g. 0.5)
    #[arg(long)]
    pub cpus: Option<f64>,
    /// Add a Linux capability (or ALL)
    #[arg(long = "cap-add")]
    pub cap_add: Vec<String>,
    /// Drop a Linux capability (or ALL)
    #[arg(long = "cap-drop")]
    pub cap_drop: Vec<String>,
    /// Give the container all capabilities, all devices, no seccomp filter, writable /sys
    #[arg(long)]
    pub privileged: bool,
    /// Security options: no-new-privileges[=true|false], seccomp=unconfined
    #[arg(long = "security-opt", value_name = "OPT")]
    pub security_opt: Vec<String>,
    /// Mount the root filesystem read-only
    #[arg(long = "read-only")]
    pub read_only: bool,
    /// Mount a tmpfs: /path[:options]
    #[arg(long)]
    pub tmpfs: Vec<String>,
    /// The container's host name
    #[arg(short = 'h', long)]
    pub hostname: Option<String>,
    /// Attach a filesystem: type=bind|volume|tmpfs,source=…,target=…[,readonly]
    #[arg(long = "mount", value_name = "SPEC")]
    pub mount: Vec<String>,
    /// Restart policy: no, always, unless-stopped, on-failure[:MAX_RETRIES]
    #[arg(long, default_value = "no", value_name = "POLICY")]
    pub restart: String,
    /// Set metadata on the container (KEY=VALUE)
    #[arg(short, long = "label", value_name = "KEY=VALUE")]
    pub label: Vec<String>,
    /// Read labels from a file (KEY=VALUE lines)
    #[arg(long = "label-file", value_name = "FILE")]
    pub label_file: Vec<PathBuf>,
    /// Write the container ID to this file
    #[arg(long, value_name = "FILE")]
    pub cidfile: Option<PathBuf>,
    /// Signal to stop the container (default: the image's STOPSIGNAL, else SIGTERM)
    #[arg(long = "stop-signal", value_name = "SIGNAL")]
    pub stop_signal: Option<String>,
    /// Seconds to wait for the container to stop before killing it (default 10)
    #[arg(long = "stop-timeout", value_name = "SECONDS", allow_negative_numbers = true)]
    pub stop_timeout: Option<i64>,
    /// Logging driver: json-file (default) or none
    #[arg(long = "log-driver", default_value = "json-file", value_name = "DRIVER")]
    pub log_driver: String,
    /// Attach to STDIN, STDOUT or STDERR (default: stdout and stderr, stdin with -i)
    #[arg(short, long = "attach", value_name = "STREAM")]
    pub attach: Vec<String>,
    /// Proxy received signals to the process
    #[arg(long = "sig-proxy", default_value_t = true, action = clap::ArgAction::Set, num_args = 0..=1,
          default_missing_value = "true", value_name = "BOOL")]
    pub sig_proxy: bool,
    /// Override the key sequence for detaching a container (default ctrl-p,ctrl-q)
    #[arg(long = "detach-keys", value_name = "KEYS")]
    pub detach_keys: Option<String>,
    /// Resource limit: NAME=SOFT[:HARD] (nofile, nproc, core, …)
    #[arg(long, value_name = "NAME=SOFT[:HARD]")]
    pub ulimit: Vec<String>,
    /// Size of /dev/shm (e.g. 128m; default 64m)
    #[arg(long = "shm-size", value_name = "BYTES")]
    pub shm_size: Option<String>,
    /// Namespaced kernel parameter: KEY=VALUE (kernel.msg*, kernel.sem, kernel.shm*, fs.mqueue.*, net.*)
    #[arg(long, value_name = "KEY=VALUE")]
    pub sysctl: Vec<String>,
    /// Add a host device: HOST[:CONTAINER][:rwm]
    #[arg(long, value_name = "DEVICE")]
    pub device: Vec<String>,
    /// Command to run to check health (a shell command)
    #[arg(long = "health-cmd", value_name = "CMD")]
    pub health_cmd: Option<String>,
    /// Time between running the check (ms|s|m|h) (default 30s)
    #[arg(long = "health-interval", value_name = "DURATION", allow_hyphen_values = true)]
    pub health_interval: Option<String>,
    /// Consecutive failures needed to report unhealthy (default 3)
    #[arg(long = "health-retries", value_name = "N", allow_negative_numbers = true)]
    pub health_retries: Option<i64>,
    /// Start period for the container to initialize before retries count (ms|s|m|h) (default 0s)
    #[arg(long = "health-start-period", value_name = "DURATION", allow_hyphen_values = true)]
    pub health_start_period: Option<String>,
    /// Maximum time to allow one check to run (ms|s|m|h) (default 30s)
    #[arg(long = "health-timeout", value_name = "DURATION", allow_hyphen_values = true)]
    pub health_timeout: Option<String>,
    /// Disable any container-specified HEALTHCHECK
    #[arg(long = "no-healthcheck")]
    pub no_healthcheck: bool,
    /// The image to run
    pub image: String,
    /// The command and its arguments (default: the image's ENTRYPOINT and CMD)
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub command: Vec<String>,
}

#[derive(clap::Args, Debug)]
pub struct StartArgs {
    /// Attach to the container's output and wait for it
    #[arg(short, long)]
    pub attach: bool,
    /// Attach the container's standard input
    #[arg(short, long)]
    pub interactive: bool,
    /// Override the key sequence for detaching a container (default ctrl-p,ctrl-q)
    #[arg(long = "detach-keys", value_name = "KEYS")]
    pub detach_keys: Option<String>,
    #[arg(required = true, value_name = "CONTAINER")]
    pub containers: Vec<String>,
}

#[derive(clap::Args, Debug)]
pub struct PsArgs {
    /// Show all containers (default shows just running)
    #[arg(short, long)]
    pub all: bool,
    /// Only container IDs
    #[arg(short, long)]
    pub quiet: bool,
    /// Do not truncate output
    #[arg(long)]
    pub no_trunc: bool,
    /// Filter (name, id, label, status, ancestor, exited, before, since, network, volume)
    #[arg(short, long = "filter")]
    pub filter: Vec<String>,
    /// Show the N last created containers (all states)
    #[arg(short = 'n', long = "last", default_value_t = -1, allow_negative_numbers = true)]
    pub last: i64,
    /// Show the latest created container (all states)
    #[arg(short = 'l', long)]
    pub latest: bool,
    /// Display total file sizes
    #[arg(short, long)]
    pub size: bool,
    /// Format the output with a Go template (or `json`, `table …`)
    #[arg(long)]
    pub format: Option<String>,
}

#[derive(clap::Args, Debug)]
pub struct LogsArgs {
    /// Follow log output
    #[arg(short, long)]
    pub follow: bool,
    /// Show timestamps
    #[arg(short, long)]
    pub timestamps: bool,
    /// Only the last N lines (or "all")
    #[arg(short = 'n', long, default_value = "all")]
    pub tail: String,
    /// Show logs since a time (RFC 3339, Unix time) or for a duration (e.g. 42m)
    #[arg(long)]
    pub since: Option<String>,
    /// Show logs before a time (RFC 3339, Unix time) or a duration ago (e.g. 42m)
    #[arg(long)]
    pub until: Option<String>,
    /// Show extra details (accepted; json-file logs carry none)
    #[arg(long)]
    pub details: bool,
    pub container: String,
}

#[derive(clap::Args, Debug)]
pub struct StopArgs {
    /// Seconds to wait before killing (default: the container's --stop-timeout, else 10)
    #[arg(short, long, allow_negative_numbers = true)]
    pub time: Option<i64>,
    #[arg(required = true)]
    pub containers: Vec<String>,
}

#[derive(clap::Args, Debug)]
pub struct KillArgs {
    /// The signal to send (name or number)
    #[arg(short, long, default_value = "KILL")]
    pub signal: String,
    #[arg(required = true)]
    pub containers: Vec<String>,
}

#[derive(clap::Args, Debug)]
pub struct RmArgs {
    /// Kill running containers first
    #[arg(short, long)]
    pub force: bool,
    /// Also remove the container's anonymous volumes
    #[arg(short, long)]
    pub volumes: bool,
    #[arg(required = true)]
    pub containers: Vec<String>,
}

#[derive(clap::Args, Debug)]
pub struct ExecArgs {
    /// Keep standard input open
    #[arg(short, long)]
    pub interactive: bool,
    /// Allocate a pseudo-terminal
    #[arg(short, long)]
    pub tty: bool,
    /// Set environment variables (KEY=VALUE)
    #[arg(short, long = "env")]
    pub env: Vec<String>,
    /// Working directory inside the container
    #[arg(short, long)]
    pub workdir: Option<String>,
    /// USER[:GROUP] or UID[:GID]
    #[arg(short, long)]
    pub user: Option<String>,
    /// Give the process all capabilities and no seccomp filter
    #[arg(long)]
    pub privileged: bool,
    /// Run the command in the background
    #[arg(short, long)]
    pub detach: bool,
    pub container: String,
    /// The command and its arguments
    #[arg(trailing_var_arg = true, allow_hyphen_values = true, required = true)]
    pub command: Vec<String>,
}

#[derive(clap::Args, Debug)]
pub struct AttachArgs {
    /// Do not attach standard input
    #[arg(long = "no-stdin")]
    pub no_stdin: bool,
    /// Override the key sequence for detaching a container (default ctrl-p,ctrl-q)
    #[arg(long = "detach-keys", value_name = "KEYS")]
    pub detach_keys: Option<String>,
    /// Proxy received signals to the process
    #[arg(long = "sig-proxy", default_value_t = true, action = clap::ArgAction::Set, num_args = 0..=1,
          default_missing_value = "true", value_name = "BOOL")]
    pub sig_proxy: bool,
    pub container: String,
}

#[derive(clap::Args, Debug)]
pub struct UpdateArgs {
    /// Memory limit (e.g. 64m)
    #[arg(short, long)]
    pub memory: Option<String>,
    /// Number of CPUs
    #[arg(long)]
    pub cpus: Option<f64>,
    /// Limit the number of processes (-1: unlimited)
    #[arg(long = "pids-limit", allow_negative_numbers = true)]
    pub pids_limit: Option<i64>,
    /// Restart policy: no, always, unless-stopped, on-failure[:MAX_RETRIES]
    #[arg(long, value_name = "POLICY")]
    pub restart: Option<String>,
    #[arg(required = true, value_name = "CONTAINER")]
    pub containers: Vec<String>,
}

#[derive(clap::Args, Debug)]
pub struct StatsArgs {
    /// Show all containers (default shows just running)
    #[arg(short, long)]
    pub all: bool,
    /// Print one reading and exit
    #[arg(long = "no-stream")]
    pub no_stream: bool,
    /// Do not truncate output
    #[arg(long = "no-trunc")]
    pub no_trunc: bool,
    /// Format the output with a Go template (or `json`, `table …`)
    #[arg(long)]
    pub format: Option<String>,
    #[arg(value_name = "CONTAINER")]
    pub containers: Vec<String>,
}

#[derive(clap::Args, Debug)]
pub struct CommitArgs {
    /// Commit message (the image's Comment)
    #[arg(short, long)]
    pub message: Option<String>,
    /// Author (e.g. "Jane <jane@example.com>")
    #[arg(short, long)]
    pub author: Option<String>,
    /// Dockerfile instructions to apply
    #[arg(short, long = "change")]
    pub changes: Vec<String>,
    pub container: String,
    pub image: Option<String>,
}

#[derive(clap::Args, Debug)]
pub struct ExportArgs {
    /// Write to a file instead of standard output
    #[arg(short, long)]
    pub output: Option<PathBuf>,
    pub container: String,
}

#[derive(clap::Args, Debug)]
pub struct TopArgs {
    pub container: String,
    /// Options for ps (default -ef)
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub ps_args: Vec<String>,
}

#[derive(clap::Args, Debug)]
pub struct PortArgs {
    pub container: String,
    /// PRIVATE_PORT[/PROTO]
    pub port: Option<String>,
}
