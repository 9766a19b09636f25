"""Self-hosted listening tests whose answers become datasets (DPAM 3.2, CDPAM 2AFC).

``pamflow listen serve --campaign CAMPAIGN.yaml`` serves a campaign
(:mod:`~pamflow.listen.campaign`): JND sessions (volume calibration, an attention check,
teaching examples, sequences of same/different questions whose strengths the
active-learning sampler picks from each listener's answers, sentinels) or 2AFC sessions,
with audio rendered on the fly from recorded params and seeds
(:mod:`~pamflow.listen.render`), answers written transactionally
(:mod:`~pamflow.listen.db`, :mod:`~pamflow.listen.session`) and an admin page
(:mod:`~pamflow.listen.admin`). ``pamflow listen export`` writes the answers as a ``jnd``
or ``triplet`` dataset (:mod:`~pamflow.listen.export`).

Modules: campaign (the YAML file), plan (what each listener is asked), render (audio,
level matching, cache), db (tables, transactions), session (enrolling, answering), stats
(fits and agreement), pages and admin (HTML), app (the FastAPI routes), export, serve
(uvicorn).
"""
