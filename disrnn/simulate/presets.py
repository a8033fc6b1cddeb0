"""The simulator's presets, as data: the fields of each preset's PresetConfig.

``disrnn.simulate.generate.PRESETS`` builds (and validates) one PresetConfig per entry,
named by its key; the fields are documented on PresetConfig.
"""

#: the paper's initial states of Lorenz and Thomas
PAPER_INITIAL = ((1.0, 1.0, 1.0), (0.1, 1.0, 1.0))

RECIPES: dict[str, dict] = {
    "lorenz-thomas": dict(
        systems=("lorenz", "thomas"),
        kind="spike_counts",
        n_units=60,
        n_trials=200,
        trial_length=50,
        iti=25,
        readout_gain=2.0,
        description="Poisson spikes from a Lorenz (3) and a Thomas (3) latent group; "
        "condition = Lorenz lobe at trial start",
    ),
    "rotation-limitcycle": dict(
        systems=("rotation", "vanderpol"),
        kind="spike_counts",
        n_units=60,
        n_trials=200,
        trial_length=50,
        iti=25,
        readout_gain=2.0,
        description="Poisson spikes from a noisy rotation (2) and a Van der Pol limit "
        "cycle (2); condition = rotation phase quadrant at trial start",
    ),
    "paper-gaussian": dict(
        systems=("lorenz", "thomas_b0"),
        kind="continuous",
        n_units=20,
        n_trials=20,
        trial_length=100,
        dt=(0.1, 0.1),
        burn_in=0,
        initial=PAPER_INITIAL,
        network="trained",
        noise_sd=0.1,
        description="the paper's synthetic benchmark: Lorenz from (1, 1, 1) and Thomas "
        "(b = 0) from (0.1, 1, 1), RK4 dt 0.1 per bin, 2000 consecutive bins in 20 trials; "
        "a 20-unit low-rank RNN trained to produce them, x = A z + a + N(0, 0.1^2)",
    ),
    "paper-poisson": dict(
        systems=("lorenz", "thomas_b0"),
        kind="spike_counts",
        n_units=100,
        n_trials=40,
        trial_length=100,
        dt=(0.1, 0.1),
        burn_in=0,
        initial=PAPER_INITIAL,
        network="trained",
        description="paper-gaussian's generator observed as Poisson spikes: a 100-unit "
        "low-rank RNN trained on 4000 bins (40 trials), x ~ Poisson(softplus(A z + a))",
    ),
    "paper-gaussian-ls": dict(
        systems=("lorenz", "thomas"),
        kind="continuous",
        n_units=20,
        n_trials=100,
        trial_length=20,
        iti=0,
        dt=(0.1, 0.1),
        substeps=1,
        noise_sd=0.1,
        description="an approximation of the paper's benchmark: Lorenz + Thomas (RK4, dt "
        "0.1 per bin, random starts), 20 neurons, random A, least-squares B, "
        "x = A z + a + N(0, 0.1^2), 2000 consecutive bins in 100 trials",
    ),
    "paper-poisson-ls": dict(
        systems=("lorenz", "thomas"),
        kind="spike_counts",
        n_units=200,
        n_trials=400,
        trial_length=20,
        iti=0,
        dt=(0.1, 0.1),
        substeps=1,
        readout_gain=2.5,
        description="paper-gaussian-ls's latents (Lorenz + Thomas, dt 0.1 per bin) "
        "observed as Poisson spikes of 200 units, 8000 consecutive bins in 400 trials",
    ),
    "coupled-gaussian": dict(
        systems=("coupled_lorenz",),
        kind="continuous",
        n_units=20,
        n_trials=100,
        trial_length=20,
        iti=0,
        dt=(0.1,),
        substeps=2,
        noise_sd=0.1,
        description="control: two diffusively coupled Lorenz systems (6 dims that do not "
        "factorise; the two halves are labelled groups 0 and 1 but are dependent), "
        "continuous like paper-gaussian-ls",
    ),
    "coupled-poisson": dict(
        systems=("coupled_lorenz",),
        kind="spike_counts",
        n_units=200,
        n_trials=400,
        trial_length=20,
        iti=0,
        dt=(0.1,),
        substeps=2,
        readout_gain=2.5,
        description="control: two coupled Lorenz systems observed as Poisson spikes, "
        "like paper-poisson-ls",
    ),
}
