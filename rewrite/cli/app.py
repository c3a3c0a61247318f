"""The ``ui`` command: the rewriting app in the browser."""

from __future__ import annotations

import click

from .common import (
    DEFAULT_MODEL,
    device,
    sampling_options,
    set_sampling,
    spec_rules,
    weights_options,
)


@click.command()
@click.argument("model", required=False, metavar=f"[MODEL (default: {DEFAULT_MODEL})]")
@click.option(
    "--host",
    default="127.0.0.1",
    show_default=True,
    help="Address to listen on (127.0.0.1: this machine only).",
)
@click.option("--port", type=click.IntRange(1, 65535), default=8000, show_default=True)
@click.option(
    "--workspace",
    type=click.Path(file_okay=False),
    default="rewrite-workspace",
    show_default=True,
    help="Folder for saved edits and exports.",
)
@click.option(
    "--stats-samples",
    type=click.IntRange(min=1),
    default=spec_rules()["stats_samples"][0],
    show_default=True,
    help="Samples for each layer's statistics.",
)
@weights_options
@sampling_options
def ui(
    model,
    host,
    port,
    workspace,
    stats_samples,
    weights,
    arch,
    device_name,
    truncation,
    noise,
    class_index,
):
    """Start the rewriting app in the browser.

    \b
    Examples:
      rewrite ui                      # the face model, http://127.0.0.1:8000
      rewrite ui my_stylegan2.pt --port 8080 --workspace edits/
      rewrite ui cifar10.pkl --class 3 --truncation 0.7   # edits made on class 3's samples
    """
    import threading
    import time

    import uvicorn

    from ..ui.guard import LOCAL_HOSTS, MAX_BODY, Guard
    from ..ui.starting import StartingApp

    if host not in ("127.0.0.1", "localhost", "::1"):
        click.echo(
            f"warning: listening on {host}: anyone who can reach this address can edit "
            "the model and read the workspace",
            err=True,
        )
    hosts = set(LOCAL_HOSTS) | {host} if host not in ("0.0.0.0", "::") else None
    if hosts is None:
        import socket

        hosts = set(LOCAL_HOSTS) | {socket.gethostname(), socket.getfqdn()}
    # Listen first and load the model meanwhile (torch alone takes about a second to
    # import): the browser fetches the page while the model loads; API requests wait.
    starting = StartingApp()
    server = uvicorn.Server(
        uvicorn.Config(
            Guard(starting, hosts, MAX_BODY),
            host=host,
            port=port,
            log_level="warning",
            lifespan="off",
        )
    )
    failure: list[BaseException] = []

    def load() -> None:
        while not (server.started or server.should_exit):  # listen first: the imports below
            time.sleep(0.01)  # hold the GIL for a second
        try:
            from ..ui.server import create_app
            from ..ui.state import AppState

            # The default model is read here, not while parsing: reading it imports the
            # model code (and torch), which is what the server should not wait for.
            state = AppState(
                model or DEFAULT_MODEL(),
                workspace,
                weights=weights,
                arch=arch,
                device=device(device_name),
                stats_samples=stats_samples,
            )
            set_sampling(state.model, truncation=truncation, noise=noise, class_index=class_index)
            state.follow_model_sampling()
            starting.ready(create_app(state, hosts).app)
        except BaseException as e:  # noqa: BLE001 - shown by the command, below
            failure.append(e)
            starting.failed(str(e))
            server.should_exit = True
            return
        _first_screen(state)

    threading.Thread(target=load, daemon=True).start()
    click.echo(
        f"rewrite app for {model or DEFAULT_MODEL}: http://{host}:{port}/  (workspace: {workspace})"
    )
    server.run()
    if failure:
        raise failure[0]


#: Samples the page shows first (its gallery's first page: samples 0-23).
FIRST_SCREEN = 24


def _first_screen(state) -> None:
    """Render the page's first gallery while the server starts and the browser loads the
    page, then warm up the statistics: the warm-up competes for the CPU, so it waits for
    the first faces instead of slowing them down."""
    for index in range(FIRST_SCREEN):
        state.render_png(index)
    state.warm_up()
