"""The rewriting app's HTTP API (FastAPI) and the static page.

``create_app(state)`` builds the app; ``rewrite ui`` serves it with uvicorn;
``serve_in_background(state)`` serves it from a thread of this process (a notebook's)::

    app = serve_in_background(AppState("dcgan-digiface64", "workspace"))
    IFrame(app.url, width="100%", height=720)      # in Jupyter
    app.stop()

Every request is validated; bad input gets a 4xx with a message the page
shows. The client never names a file-system path: specs and exports live in
the workspace under sanitised names.

Edit specifications have one validator, :meth:`rewrite.edit.spec.EditSpec.from_json`:
the endpoints that take a spec read the body as plain JSON and hand it to the parser,
and ``/openapi.json`` publishes the spec's JSON Schema (:func:`rewrite.edit.schema.spec_schema`,
for the app's model) as that body's schema, under ``components/schemas/EditSpec``.
"""

from __future__ import annotations

import json
import re
import socket
import threading
import time
from collections.abc import Iterable
from typing import Any, Literal

from fastapi import Depends, FastAPI, HTTPException, Query, Request
from fastapi.responses import FileResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel, Field

from ..edit import METHODS, EditSpec
from ..edit.methods import default_method
from ..edit.schema import spec_schema
from ..edit.spec import DEFAULT_DIRECTION, DEFAULT_RANK, MAX_STRENGTH, Selection, loads
from ..memory.directions import DIRECTION_METHODS
from ..models.latents import MAX_SAMPLES
from ..models.sampling import non_default
from ..utils.errors import RewriteError, SpecError
from .guard import LOCAL_HOSTS, MAX_BODY, Guard
from .starting import STATIC
from .state import AppState, Conflict, Missing

#: Most statistics samples an edit started from the app may ask for.
MAX_APP_STATS = 100_000


#: Where the OpenAPI document keeps the edit spec's schema (its definitions beside it, as
#: ``EditSpec_<name>``).
SPEC_REF = "#/components/schemas/EditSpec"


def spec_components(model: str, layers: list[str]) -> dict[str, dict]:
    """The spec's JSON Schema for the app (model ``model``, whose editable ``layers`` are
    named) as OpenAPI components: ``EditSpec`` and one ``EditSpec_<name>`` per definition,
    with references pointing at them. Generated from :func:`spec_schema` on every call."""
    schema = spec_schema(model=model, max_stats_samples=MAX_APP_STATS)
    schema["properties"]["layer"] = {"enum": layers, "description": f"Editable layer of {model}."}
    schema.pop("$schema")
    schema.pop("$id")
    defs = schema.pop("$defs")
    names = {key: "EditSpec_" + re.sub(r"[^A-Za-z0-9._-]", "_", key) for key in defs}
    text = json.dumps({"EditSpec": schema, **{names[k]: v for k, v in defs.items()}})
    for key, name in names.items():
        text = text.replace(f'"#/$defs/{key}"', f'"#/components/schemas/{name}"')
    return json.loads(text)


def _spec_body(what: str) -> dict:
    """OpenAPI of a request whose JSON body is an edit specification (``openapi_extra``)."""
    return {
        "requestBody": {
            "required": True,
            "description": what,
            "content": {"application/json": {"schema": {"$ref": SPEC_REF}}},
        }
    }


async def spec_json(request: Request) -> Any:
    """The request body read as JSON by the spec module's reader (integer literals too wide
    for a spec are named by the parser, not converted); not validated here."""
    body = await request.body()
    try:
        return loads(body.decode("utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise SpecError([f"the request body is not valid JSON ({e})"]) from None
    except RecursionError:
        raise SpecError(
            ["the request body is nested too deeply to be an edit specification"]
        ) from None


class MaskedSample(BaseModel):
    """A sample and a mask drawn on it."""

    sample: int = Field(ge=0, lt=MAX_SAMPLES)
    mask: dict


class HeatmapRequest(BaseModel):
    """Where the context direction fires on ``samples``."""

    layer: str = Field(max_length=64)
    rank: int = Field(default=4, ge=1, le=64)
    direction: Literal["mean", "zca"] = "zca"
    context: list[MaskedSample] = Field(min_length=1, max_length=32)
    samples: list[int] = Field(default_factory=list, max_length=96)


class StrengthRequest(BaseModel):
    """The new strength ``s`` of an applied edit (its change becomes ``s·ΔW``)."""

    strength: float = Field(ge=0, le=MAX_STRENGTH, allow_inf_nan=False)


class SamplingRequest(BaseModel):
    """Sampling options to use from now on (omitted: unchanged)."""

    truncation: float | None = Field(default=None, ge=0, le=1, allow_inf_nan=False)
    class_: int | None = Field(default=None, ge=0, alias="class")


class SolveTogetherRequest(BaseModel):
    """The layer whose applied edits are solved again, jointly."""

    layer: str = Field(min_length=1, max_length=128)


def create_app(state: AppState, hosts: Iterable[str] = LOCAL_HOSTS):
    """The app over ``state`` (an ASGI app), answering only to host names ``hosts``.

    Requests for another host, state-changing requests from another site and bodies over
    ``MAX_BODY`` are refused before the API sees them (see :mod:`.guard`).
    """
    app = _api(state)
    plain_openapi = app.openapi

    def openapi() -> dict:
        """FastAPI's document, with the edit spec's schema as the body of the endpoints that
        take one and as the mask of a heat map's context."""
        if app.openapi_schema is None:
            doc = plain_openapi()
            schemas = doc.setdefault("components", {}).setdefault("schemas", {})
            schemas.update(
                spec_components(state.model_name, [L.name for L in state.model.layers()])
            )
            schemas["MaskedSample"]["properties"]["mask"] = {
                "$ref": "#/components/schemas/EditSpec_mask"
            }
        assert app.openapi_schema is not None  # plain_openapi() stored it
        return app.openapi_schema

    # FastAPI's documented way to extend its OpenAPI document; its stubs call it a method.
    app.openapi = openapi  # type: ignore[method-assign]
    guarded = Guard(app, hosts, MAX_BODY)
    guarded.api = app  # the FastAPI object (routes, OpenAPI schema)
    return guarded


def _api(state: AppState) -> FastAPI:
    app = FastAPI(
        title="rewrite",
        version="1",
        description="Rewrite the rules of a generator: copy, paste, context, erase.",
    )

    @app.exception_handler(SpecError)
    async def spec_error(request, exc: SpecError):
        return JSONResponse({"detail": str(exc), "problems": exc.problems}, 422)

    @app.exception_handler(RewriteError)
    async def rewrite_error(request, exc: RewriteError):
        return JSONResponse({"detail": str(exc)}, 422)

    @app.exception_handler(Conflict)
    async def conflict(request, exc: Conflict):
        return JSONResponse({"detail": str(exc)}, 409)

    @app.exception_handler(Missing)
    async def missing(request, exc: Missing):
        return JSONResponse({"detail": str(exc)}, 404)

    @app.exception_handler(ValueError)
    async def value_error(request, exc: ValueError):
        return JSONResponse({"detail": str(exc)}, 400)

    @app.get("/api/info")
    def info() -> dict:
        """The model, its editable layers, its sampling settings that differ from the defaults
        (truncation, class), the solvers, and the session's state."""
        G = state.model
        return {
            "model": state.model_name,
            "family": G.family,
            "resolution": G.resolution,
            "max_sample": MAX_SAMPLES - 1,
            "sampling": G.sampling_changes(),
            "sampling_options": {
                "truncation": "truncation" in G.sampling_settings(),
                "classes": G.num_classes,
            },
            "layers": [
                {
                    "name": L.name,
                    "kind": L.kind,
                    "in_channels": L.in_channels,
                    "out_channels": L.out_channels,
                    "key_resolution": L.key_resolution,
                    "value_resolution": L.value_resolution,
                }
                for L in G.layers()
            ],
            "solvers": list(METHODS),
            "directions": list(DIRECTION_METHODS),
            "spec_defaults": {
                "rank": DEFAULT_RANK,
                "direction": DEFAULT_DIRECTION,
                "solver": default_method(state.model_name),
            },
            "edits": [d.figures() for d in state.session.deltas],
            "version": state.version,
            "stats_ready": sorted(state.ready_layers),
            "stats_running": state.stats_progress(),
            "job": state.job.__dict__,
        }

    @app.get("/api/sample/{index}.png", responses={200: {"content": {"image/png": {}}}})
    def sample(index: int, edited: bool = Query(True)) -> Response:
        """Sample ``index`` rendered by the edited (default) or the original model."""
        if not 0 <= index < MAX_SAMPLES:
            raise HTTPException(422, f"sample index must be in 0..{MAX_SAMPLES - 1}")
        return Response(
            state.render_png(index, edited),
            media_type="image/png",
            headers={"Cache-Control": "no-store"},
        )

    @app.post("/api/heatmap")
    def heatmap(req: HeatmapRequest) -> dict:
        """How strongly the rule defined by ``context`` fires on each of ``samples``."""
        if any(not 0 <= s < MAX_SAMPLES for s in req.samples):
            raise HTTPException(422, f"sample indices must be in 0..{MAX_SAMPLES - 1}")
        spec = EditSpec(
            model=state.model_name,
            layer=req.layer,
            kind="erase",
            rank=req.rank,
            direction=req.direction,
            stats_samples=state.stats_samples,
            context=[Selection(c.sample, c.mask) for c in req.context],
        )
        return state.heatmap(spec, req.samples)

    def with_app_sampling(parsed: EditSpec) -> EditSpec:
        """The spec with the app's sampling settings (truncation, class) recorded; a spec
        made with other settings is refused (its sample indices show other images here)."""
        if parsed.sampling is None:
            parsed.sampling = state.model.sampling_changes() or None
        elif non_default(parsed.sampling) != state.model.sampling_changes():
            flags = " ".join(f"--{k} {v:g}" for k, v in parsed.sampling.items())
            raise SpecError(
                [
                    f"this edit was made with sampling {parsed.sampling}, the app "
                    f"samples with {state.model.sampling_changes() or 'the defaults'}; "
                    f"set them under Samples on the page (or start the app with "
                    f"{flags}) to use it"
                ]
            )
        return parsed

    def parse(spec: Any) -> EditSpec:
        """A spec posted by the page: the app's model, the app's statistics by default, the
        app's sampling settings."""
        if not isinstance(spec, dict):
            EditSpec.from_json(spec)  # refuses it, saying what it must be
        parsed = with_app_sampling(EditSpec.from_json({**spec, "model": state.model_name}))
        if "stats" not in spec:
            parsed.stats_samples = state.stats_samples
        return within_app_limits(parsed)

    def within_app_limits(parsed: EditSpec) -> EditSpec:
        """The spec, if the app may run it (the published schema's ``stats.samples`` bound)."""
        if parsed.stats_samples > MAX_APP_STATS:
            # An edit holds the app's one edit slot: keep each to minutes, not hours.
            raise SpecError(
                [
                    f"'stats.samples' is at most {MAX_APP_STATS} in the app, got "
                    f"{parsed.stats_samples}; compute larger statistics with "
                    "`rewrite stats` first"
                ]
            )
        return parsed

    @app.post(
        "/api/apply",
        status_code=202,
        openapi_extra=_spec_body("The edit ('model' may be left out: the app's)."),
    )
    def apply(spec: Any = Depends(spec_json)) -> dict:
        """Start an edit (the spec format of ``rewrite edit``); poll ``/api/job``."""
        return state.start_apply(parse(spec)).__dict__

    @app.post("/api/goal", openapi_extra=_spec_body("The edit whose goal to show."))
    def goal(spec: Any = Depends(spec_json), solved: bool = Query(False)) -> dict:
        """What the spec asks of its layer, before solving: ``png`` (a data URL of the panel:
        copy source, paste target, pasted request, goal rendered through the rest of the
        network), ``fidelity`` (0 = the goal shows the request exactly, near 1 = not at all)
        and ``notes``. With ``solved=true`` the spec must be the last applied edit, and the
        panel ends with the edited paste target."""
        return state.goal(parse(spec), solved)

    @app.get("/api/edits")
    def edits() -> list[dict]:
        """The applied edits, oldest first: name, kind, layer, method, strength, predicted
        collateral at that strength and its warning."""
        return state.edits()

    @app.post("/api/edits/{index}/strength")
    def set_strength(index: int, req: StrengthRequest) -> dict:
        """Set applied edit ``index``'s strength (weights W0 + Σ s_i·ΔW_i, no new solve)."""
        edit = state.set_strength(index, req.strength)
        return {"edit": edit, "edits": state.edits(), "version": state.version}

    @app.delete("/api/edits/{index}")
    def remove_edit(index: int) -> dict:
        """Remove applied edit ``index``, keeping the later ones."""
        state.remove(index)
        return {"edits": state.edits(), "version": state.version}

    @app.post("/api/edits/solve-together")
    def solve_together(req: SolveTogetherRequest) -> dict:
        """Solve the applied edits of one layer again, jointly (each keeps its strength)."""
        return {"edits": state.solve_together(req.layer), "version": state.version}

    @app.post("/api/sampling")
    def set_sampling(req: SamplingRequest) -> dict:
        """Sample with this truncation / class from now on (the applied edits stay; new
        edits record the settings); 409 while an edit runs, 422 for settings the model
        cannot take."""
        settings = {
            k: v
            for k, v in (("truncation", req.truncation), ("class", req.class_))
            if v is not None
        }
        try:
            changes = state.set_sampling(settings)
        except RewriteError as e:
            raise HTTPException(422, str(e)) from None
        return {"sampling": changes, "version": state.version}

    @app.get("/api/job")
    def job() -> dict:
        """The running or last edit: state (idle, running, done, failed, cancelled), what it
        is doing (``phase``, ``done`` of ``total``), message and figures; ``stats_running``
        lists statistics being computed now (also by the warm-up or a heat map)."""
        return {
            **state.job.__dict__,
            "version": state.version,
            "edits": len(state.session.deltas),
            "stats_running": state.stats_progress(),
        }

    @app.post("/api/cancel")
    def cancel() -> dict:
        """Cancel the running edit: it stops at its next check and changes nothing (409 when
        no edit runs). Poll ``/api/job`` until its state is ``cancelled``."""
        return state.cancel().__dict__

    @app.post("/api/undo")
    def undo() -> dict:
        """Undo the last edit."""
        return {"edits": state.undo(), "version": state.version}

    @app.post("/api/reset")
    def reset() -> dict:
        """Undo every edit."""
        return {"edits": state.reset(), "version": state.version}

    @app.get("/api/specs")
    def list_specs() -> list[str]:
        """Names of the specs saved in the workspace."""
        return sorted(p.stem for p in (state.workspace / "specs").glob("*.json"))

    @app.put("/api/specs/{name}", openapi_extra=_spec_body("The edit to save."))
    def save_spec(name: str, spec: Any = Depends(spec_json)) -> dict:
        """Validate and save a spec under ``name`` in the workspace (one the app can apply)."""
        path = state.spec_path(name)
        if not isinstance(spec, dict):
            EditSpec.from_json(spec)
        parsed = within_app_limits(
            with_app_sampling(EditSpec.from_json({**spec, "model": state.model_name}))
        )
        parsed.validate_for(state.model)
        parsed.save(path)
        return {"saved": name}

    @app.get(
        "/api/specs/{name}",
        response_model=None,
        responses={
            200: {
                "description": "The spec as saved.",
                "content": {"application/json": {"schema": {"$ref": SPEC_REF}}},
            }
        },
    )
    def load_spec(name: str) -> dict:
        """A saved spec."""
        path = state.spec_path(name)
        if not path.is_file():
            raise HTTPException(404, f"no saved spec named {name!r}")
        return json.loads(path.read_text())

    @app.get(
        "/api/export/checkpoint", responses={200: {"content": {"application/octet-stream": {}}}}
    )
    def export_checkpoint() -> FileResponse:
        """The edited model in its family's checkpoint format (``edited.pkl`` for an NVIDIA
        network pickle, else ``edited.pt``)."""
        path = state.export_checkpoint()
        return FileResponse(path, filename=path.name, media_type="application/octet-stream")

    @app.get("/api/export/delta", responses={200: {"content": {"application/octet-stream": {}}}})
    def export_delta() -> FileResponse:
        """The applied edits as a delta file (Λ and D per edit, plus the specs)."""
        return FileResponse(
            state.export_deltas(),
            filename="edits.safetensors",
            media_type="application/octet-stream",
        )

    app.mount("/", StaticFiles(directory=STATIC, html=True), name="static")
    return app


class BackgroundApp:
    """The app served by uvicorn on a daemon thread of this process; see
    :func:`serve_in_background`. ``url`` is the page; :meth:`stop` shuts the server down."""

    def __init__(
        self, state: AppState, host: str = "127.0.0.1", port: int = 0, start_timeout: float = 30.0
    ):
        import uvicorn

        sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
        sock.bind((host, port))  # port 0: a free one, chosen by the system
        self.port = sock.getsockname()[1]
        self.url = f"http://{f'[{host}]' if ':' in host else host}:{self.port}/"
        self._server = uvicorn.Server(
            uvicorn.Config(create_app(state, {*LOCAL_HOSTS, host}), log_level="warning")
        )
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [sock]}, name="rewrite-app", daemon=True
        )
        self._thread.start()
        deadline = time.monotonic() + start_timeout
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                self._server.should_exit = True
                sock.close()
                raise RuntimeError(f"the app did not start on {self.url}")
            time.sleep(0.05)

    @property
    def running(self) -> bool:
        return self._thread.is_alive()

    def stop(self, timeout: float = 10.0) -> None:
        """Stop serving (open requests get ``timeout`` seconds to finish); idempotent."""
        self._server.should_exit = True
        self._thread.join(timeout)

    def __repr__(self) -> str:
        return f"<rewrite app at {self.url}{'' if self.running else ' (stopped)'}>"


def serve_in_background(state: AppState, host: str = "127.0.0.1", port: int = 0) -> BackgroundApp:
    """Serve the app over ``state`` on ``host``:``port`` (0: a free port) from a thread of
    this process, e.g. to show it in a notebook (``IFrame(app.url, ...)``); returns once it
    answers. Stop it with ``app.stop()``."""
    return BackgroundApp(state, host, port)
